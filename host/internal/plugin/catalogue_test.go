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

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0}, {"1.0.10", "1.0.9", 1}, {"0.9.0", "1.0.0", -1}, {"2.0.0", "1.99.99", 1},
		{"1.0.0-rc.1", "1.0.0", -1}, {"1.0.0-rc.2", "1.0.0-rc.10", -1}, {"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.0.0-1", "1.0.0-alpha", -1}, {"1.0.0-beta", "1.0.0-alpha", 1},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := compareVersions(c.b, c.a); got != -c.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}
