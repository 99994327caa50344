package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"

	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/permissions"
)

// RuleStore keeps the run-time rules; *store.Store implements it.
type RuleStore interface {
	ListRules(ctx context.Context) ([]store.Rule, error)
	AddRules(ctx context.Context, rules []store.Rule) error
	RemoveRules(ctx context.Context, ptype string, field int, match ...string) (int64, error)
	// RulesVersion changes whenever the stored rules change.
	RulesVersion(ctx context.Context) (int64, error)
}

// adapter is the casbin adapter over RuleStore. The built-in policy is
// loaded from permissions/ and never written to the database.
type adapter struct {
	rules   RuleStore
	timeout time.Duration
	loaded  atomic.Int64 // RulesVersion when the rules were last loaded
}

var _ persist.Adapter = (*adapter)(nil)

func (a *adapter) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.timeout)
}

func (a *adapter) LoadPolicy(m model.Model) error {
	for _, line := range strings.Split(permissions.Policy, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := persist.LoadPolicyLine(line, m); err != nil {
			return fmt.Errorf("authz: built-in policy line %q: %w", line, err)
		}
	}
	ctx, cancel := a.ctx()
	defer cancel()
	// The version is read first: a change racing with the load shows as a
	// newer version later, and causes another load.
	version, err := a.rules.RulesVersion(ctx)
	if err != nil {
		return fmt.Errorf("authz: load rules: %w", err)
	}
	rules, err := a.rules.ListRules(ctx)
	if err != nil {
		return fmt.Errorf("authz: load rules: %w", err)
	}
	for _, r := range rules {
		vals := []string{r.PType}
		for _, v := range r.V {
			if v != "" {
				vals = append(vals, v)
			}
		}
		if err := persist.LoadPolicyArray(vals, m); err != nil {
			return fmt.Errorf("authz: stored rule %v: %w", vals, err)
		}
	}
	a.loaded.Store(version)
	return nil
}

func (a *adapter) SavePolicy(model.Model) error {
	return errors.New("authz: saving the whole policy is not supported; change rules one by one")
}

func toRule(ptype string, rule []string) (store.Rule, error) {
	r := store.Rule{PType: ptype}
	if len(rule) > len(r.V) {
		return r, fmt.Errorf("authz: rule %v has more than %d values", rule, len(r.V))
	}
	copy(r.V[:], rule)
	return r, nil
}

func (a *adapter) AddPolicy(_, ptype string, rule []string) error {
	return a.AddPolicies("", ptype, [][]string{rule})
}

// AddPolicies implements persist.BatchAdapter.
func (a *adapter) AddPolicies(_, ptype string, rules [][]string) error {
	rs := make([]store.Rule, 0, len(rules))
	for _, rule := range rules {
		r, err := toRule(ptype, rule)
		if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	ctx, cancel := a.ctx()
	defer cancel()
	return a.rules.AddRules(ctx, rs)
}

func (a *adapter) RemovePolicy(_, ptype string, rule []string) error {
	ctx, cancel := a.ctx()
	defer cancel()
	_, err := a.rules.RemoveRules(ctx, ptype, 0, rule...)
	return err
}

// RemovePolicies implements persist.BatchAdapter.
func (a *adapter) RemovePolicies(sec, ptype string, rules [][]string) error {
	for _, r := range rules {
		if err := a.RemovePolicy(sec, ptype, r); err != nil {
			return err
		}
	}
	return nil
}

func (a *adapter) RemoveFilteredPolicy(_, ptype string, field int, values ...string) error {
	ctx, cancel := a.ctx()
	defer cancel()
	_, err := a.rules.RemoveRules(ctx, ptype, field, values...)
	return err
}
