package ws

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spywatcher/spywatcher/host/internal/auth"
)

// ErrTicket means a ticket is unknown, used or expired.
var ErrTicket = errors.New("ws: ticket unknown, already used or expired")

// TicketStore keeps WebSocket tickets: a random secret standing for a
// principal for a few seconds, usable once. Only the secret's hash is kept.
type TicketStore interface {
	Put(ctx context.Context, hash string, p TicketHolder, ttl time.Duration) error
	Take(ctx context.Context, hash string) (TicketHolder, error)
}

// TicketHolder is what a ticket carries: who, never the credential.
type TicketHolder struct {
	Kind      string `json:"kind"`
	ID        string `json:"id"`
	Subject   string `json:"subject"`
	Name      string `json:"name,omitempty"`
	AccountID string `json:"account_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	ReadOnly  bool   `json:"read_only,omitempty"`
	Tier      string `json:"tier,omitempty"`
}

func hashTicket(t string) string {
	s := sha256.Sum256([]byte(t))
	return hex.EncodeToString(s[:])
}

// IssueTicket returns a new ticket for p, valid for the hub's TicketTTL.
func (h *Hub) IssueTicket(ctx context.Context, p auth.Principal) (string, time.Time, error) {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	t := "wst_" + base64.RawURLEncoding.EncodeToString(b)
	tp := TicketHolder{Kind: p.Kind, ID: p.ID, Subject: p.Subject, Name: p.Name, AccountID: p.AccountID,
		SessionID: p.SessionID, ReadOnly: p.ReadOnly, Tier: p.Tier}
	if err := h.tickets.Put(ctx, hashTicket(t), tp, h.cfg.TicketTTL); err != nil {
		return "", time.Time{}, err
	}
	return t, time.Now().Add(h.cfg.TicketTTL), nil
}

func (h *Hub) takeTicket(ctx context.Context, t string) (auth.Principal, error) {
	if len(t) > 100 {
		return auth.Principal{}, ErrTicket
	}
	tp, err := h.tickets.Take(ctx, hashTicket(t))
	if err != nil {
		return auth.Principal{}, err
	}
	return auth.Principal{Kind: tp.Kind, ID: tp.ID, Subject: tp.Subject, Name: tp.Name, AccountID: tp.AccountID,
		SessionID: tp.SessionID, ReadOnly: tp.ReadOnly, Tier: tp.Tier}, nil
}

// MemoryTickets keeps tickets in this process.
type MemoryTickets struct {
	mu sync.Mutex
	m  map[string]memTicket
}

type memTicket struct {
	p       TicketHolder
	expires time.Time
}

// NewMemoryTickets returns an empty in-process ticket store.
func NewMemoryTickets() *MemoryTickets { return &MemoryTickets{m: map[string]memTicket{}} }

// Put stores a ticket.
func (s *MemoryTickets) Put(_ context.Context, hash string, p TicketHolder, ttl time.Duration) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m { // tickets are few and short-lived
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	if len(s.m) > 100_000 {
		return errors.New("ws: too many outstanding tickets")
	}
	s.m[hash] = memTicket{p: p, expires: now.Add(ttl)}
	return nil
}

// Take returns and forgets a ticket.
func (s *MemoryTickets) Take(_ context.Context, hash string) (TicketHolder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[hash]
	delete(s.m, hash)
	if !ok || time.Now().After(t.expires) {
		return TicketHolder{}, ErrTicket
	}
	return t.p, nil
}

// RedisTickets keeps tickets in Redis, so that a ticket issued by one
// instance works on another behind the same load balancer.
type RedisTickets struct{ rdb *redis.Client }

// NewRedisTickets returns a ticket store over rdb.
func NewRedisTickets(rdb *redis.Client) *RedisTickets { return &RedisTickets{rdb: rdb} }

const redisTicketPrefix = "spywatcher:ws:ticket:"

// Put stores a ticket with its expiry.
func (s *RedisTickets) Put(ctx context.Context, hash string, p TicketHolder, ttl time.Duration) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, redisTicketPrefix+hash, b, ttl).Err(); err != nil {
		return fmt.Errorf("ws: store ticket: %w", err)
	}
	return nil
}

// Take returns and deletes a ticket atomically (GETDEL).
func (s *RedisTickets) Take(ctx context.Context, hash string) (TicketHolder, error) {
	b, err := s.rdb.GetDel(ctx, redisTicketPrefix+hash).Bytes()
	if errors.Is(err, redis.Nil) {
		return TicketHolder{}, ErrTicket
	}
	if err != nil {
		return TicketHolder{}, fmt.Errorf("ws: take ticket: %w", err)
	}
	var p TicketHolder
	if err := json.Unmarshal(b, &p); err != nil {
		return TicketHolder{}, fmt.Errorf("ws: ticket: %w", err)
	}
	return p, nil
}
