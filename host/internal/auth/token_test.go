package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

type memTokens struct {
	m       map[string]string
	lookups int
	fail    error
}

func (s *memTokens) AddAdminToken(_ context.Context, id, hash string) error {
	s.m[hash] = id
	return nil
}

func (s *memTokens) AdminTokenID(_ context.Context, hash string) (string, error) {
	s.lookups++
	if s.fail != nil {
		return "", s.fail
	}
	id, ok := s.m[hash]
	if !ok {
		return "", fmt.Errorf("store: admin token: %w", store.ErrNotFound)
	}
	return id, nil
}

func (s *memTokens) CountAdminTokens(context.Context) (int, error) { return len(s.m), nil }

func TestEnsureAdminTokenGeneratesOnce(t *testing.T) {
	ts := &memTokens{m: map[string]string{}}
	ctx := context.Background()
	tok, err := EnsureAdminToken(ctx, ts, "")
	if err != nil || len(tok) < 40 {
		t.Fatalf("first start: %q %v", tok, err)
	}
	again, err := EnsureAdminToken(ctx, ts, "")
	if err != nil || again != "" {
		t.Fatalf("second start must not print a new token: %q %v", again, err)
	}
	if _, ok := ts.m[HashToken(tok)]; !ok || len(ts.m) != 1 {
		t.Fatal("token not stored as a hash")
	}
	for h := range ts.m {
		if h == tok {
			t.Fatal("token stored in the clear")
		}
	}
}

func TestAuthenticate(t *testing.T) {
	ts := &memTokens{m: map[string]string{}}
	EnsureAdminToken(context.Background(), ts, "a-configured-token-123")
	a := NewAuthenticator(ts)
	tests := []struct {
		header string
		ok     bool
	}{
		{"Bearer a-configured-token-123", true},
		{"bearer a-configured-token-123", true},
		{"Bearer wrong-token-wrong-token", false},
		{"Basic YTpi", false},
		{"Bearer", false},
		{"", false},
		{"Bearer " + string(make([]byte, 600)), false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/api/v1/guilds", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		p, err := a.Authenticate(r)
		if tt.ok != (err == nil) || (tt.ok && !p.Admin) {
			t.Errorf("%q: %+v %v", tt.header, p, err)
		}
		if !tt.ok && !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%q: want ErrUnauthenticated, got %v", tt.header, err)
		}
	}
	// Answers are cached: repeating a request does not hit the store.
	n := ts.lookups
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer a-configured-token-123")
	a.Authenticate(r)
	if ts.lookups != n {
		t.Fatal("cached token looked up again")
	}
	// A store failure is not "unauthenticated".
	ts.fail = errors.New("db down")
	r.Header.Set("Authorization", "Bearer another-token-xxxxxxxx")
	if _, err := a.Authenticate(r); err == nil || errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("store failure: %v", err)
	}
}
