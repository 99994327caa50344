package api

import (
	"context"
	"net/http"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/store"
)

type memberStore interface {
	guildChecker
	ListMembers(ctx context.Context, guildID string, q store.MemberQuery) (store.MemberPage, error)
	GetMember(ctx context.Context, guildID, userID string) (store.Member, error)
	MemberStats(ctx context.Context, guildID, userID string, from, to time.Time) (store.MemberStats, error)
}

type membersHandler struct {
	store memberStore
	now   func() time.Time
	err   errWriter
}

func (h *membersHandler) list(w http.ResponseWriter, r *http.Request) {
	gid, err := guildParam(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	p := query(r)
	q := store.MemberQuery{
		Search:      p.str("q", 100),
		Status:      p.oneOf("status", "", "online", "offline"),
		Role:        p.snowflake("role"),
		IncludeLeft: p.boolean("include_left"),
		Sort:        p.oneOf("sort", "name", store.MemberSorts...),
		Desc:        p.oneOf("order", "asc", "asc", "desc") == "desc",
		Limit:       p.limit(50, 500),
		Cursor:      p.str("cursor", 512),
	}
	if err := p.err(); err != nil {
		h.err.write(w, r, err)
		return
	}
	if err := requireGuild(r.Context(), h.store, gid); err != nil {
		h.err.write(w, r, err)
		return
	}
	page, err := h.store.ListMembers(r.Context(), gid, q)
	if err != nil {
		h.err.write(w, r, storeErr(err, ""))
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// memberProfile is a member with their numbers over a window.
type memberProfile struct {
	store.Member
	AccountAgeDays int               `json:"account_age_days"`
	Stats          store.MemberStats `json:"stats"`
}

func (h *membersHandler) get(w http.ResponseWriter, r *http.Request) {
	gid, err := guildParam(r)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	uid, err := idParam(r, "user")
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	now := h.now().UTC()
	p := query(r)
	from, to := p.span(now, 7*24*time.Hour, 366*24*time.Hour)
	if err := p.err(); err != nil {
		h.err.write(w, r, err)
		return
	}
	m, err := h.store.GetMember(r.Context(), gid, uid)
	if err != nil {
		h.err.write(w, r, storeErr(err, "member "+uid+" of guild "+gid))
		return
	}
	st, err := h.store.MemberStats(r.Context(), gid, uid, from, to)
	if err != nil {
		h.err.write(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, memberProfile{
		Member:         m,
		AccountAgeDays: int(now.Sub(m.AccountCreated) / (24 * time.Hour)),
		Stats:          st,
	})
}
