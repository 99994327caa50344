package plugin

import "testing"

func TestCatalogueHasEveryPermissionTheHostUses(t *testing.T) {
	names := []string{PermPresenceRead, PermMessageRead, PermContentRead, PermTypingRead, PermMemberEvents, PermBanRead,
		PermVoiceRead, PermGuildRead, PermScoreRead, PermMembersRead, PermActivityRead, PermKVRead, PermKVWrite, PermMetricsWrite,
		PermEventsEmit, PermRoutesServe, PermHTTPFetch, PermScoresWrite}
	for _, perm := range hostFunctionPermission {
		if perm != "" {
			names = append(names, perm)
		}
	}
	for _, perm := range readPermission {
		names = append(names, perm)
	}
	for _, n := range names {
		p, ok := LookupPermission(n)
		if !ok {
			t.Errorf("%s is not in permissions/catalogue.json", n)
			continue
		}
		if p.Grants == "" || (p.Risk != RiskLow && p.Risk != RiskMedium && p.Risk != RiskHigh) {
			t.Errorf("%s: needs a description and a risk level: %+v", n, p)
		}
	}
	if len(Catalogue()) != 18 {
		t.Errorf("catalogue has %d plugin permissions, want 18", len(Catalogue()))
	}
}
