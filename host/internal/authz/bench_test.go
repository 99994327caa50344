package authz

import (
	"context"
	"fmt"
	"testing"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

// BenchmarkEnforce measures one decision with and without the cache, on a
// policy of 1000 users with roles in 10 guilds, 100 API keys and 50 plugins
// with 5 grants in each of 20 guilds (15,100 rules).
func BenchmarkEnforce(b *testing.B) {
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cache=%v", cached), func(b *testing.B) {
			st := openStore(b)
			e := newEnforcer(b, st, Options{NoCache: !cached})
			// Rules go straight to the database and are loaded once: setting
			// them one by one would measure SQLite, not the enforcer.
			var rules []store.Rule
			for i := 0; i < 1000; i++ {
				for g := 0; g < 10; g++ {
					rules = append(rules, store.Rule{PType: "g", V: [4]string{User(fmt.Sprint(i)), roleSubject(GuildRoles[(i+g)%len(GuildRoles)]), fmt.Sprint(1000 + g)}})
				}
			}
			for i := 0; i < 100; i++ {
				rules = append(rules, store.Rule{PType: "g", V: [4]string{APIKey(fmt.Sprint(i)), User(fmt.Sprint(i)), "1000"}})
			}
			for p := 0; p < 50; p++ {
				for g := 0; g < 20; g++ {
					for _, perm := range []string{"kv.write", "events.presence.read", "members.read", "emit", "scores.write"} {
						rules = append(rules, store.Rule{PType: grantType, V: [4]string{Plugin(fmt.Sprint(p)), fmt.Sprint(1000 + g), perm, Use}})
					}
				}
			}
			if err := st.AddRules(context.Background(), rules); err != nil {
				b.Fatal(err)
			}
			if err := e.Reload(); err != nil {
				b.Fatal(err)
			}
			for _, rc := range []struct {
				name string
				req  [4]string
			}{
				{"user", [4]string{User("17"), "1004", "members", Read}},
				{"apikey", [4]string{APIKey("17"), "1000", "guild", Read}},
				{"plugin", [4]string{Plugin("7"), "1003", "kv.write", Use}},
				{"plugin-denied", [4]string{Plugin("7"), "1099", "kv.write", Use}},
			} {
				b.Run(rc.name, func(b *testing.B) {
					r := rc.req
					for i := 0; i < b.N; i++ {
						if _, err := e.Enforce(r[0], r[1], r[2], r[3]); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
