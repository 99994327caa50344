package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// PluginResult is what one plugin's delete_user hook did in one guild.
type PluginResult struct {
	Plugin string `json:"plugin"`
	Guild  string `json:"guild"`
	Error  string `json:"error,omitempty"`
}

// PluginDeleter calls every plugin's delete_user hook; *plugin.Host
// implements it. guildID "" means every guild.
type PluginDeleter interface {
	DeleteUser(ctx context.Context, guildID, userID string) []PluginResult
}

// Config tunes the Service. Zero fields take the defaults noted.
type Config struct {
	// Grace is how long a removed guild's data is kept before it is
	// deleted (the bot may be re-added, the admin may change their mind);
	// default 72h.
	Grace time.Duration
	// Batch is the most rows one delete statement removes; default 5000.
	Batch  int
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Grace <= 0 {
		c.Grace = 72 * time.Hour
	}
	if c.Batch <= 0 {
		c.Batch = 5000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Service carries out the guild settings, data requests, retention and
// guild removal.
type Service struct {
	cfg     Config
	st      *store.Store
	filter  *Filter
	plugins PluginDeleter // nil: no plugin host (CLI without one)
	m       *metrics
}

// New returns the service. plugins may be nil; reg may be nil.
func New(cfg Config, st *store.Store, filter *Filter, plugins PluginDeleter, reg prometheus.Registerer) (*Service, error) {
	cfg.defaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, st: st, filter: filter, plugins: plugins, m: m}, nil
}

// Filter returns the ingest filter the service keeps current.
func (s *Service) Filter() *Filter { return s.filter }

// Grace returns the guild removal grace period.
func (s *Service) Grace() time.Duration { return s.cfg.Grace }

// SaveSettings stores a guild's settings; ingest applies them from the
// moment SaveSettings returns.
func (s *Service) SaveSettings(ctx context.Context, g store.GuildSettings) error {
	if err := s.st.PutGuildSettings(ctx, g); err != nil {
		return err
	}
	return s.changed(ctx)
}

// EnsureSettings saves g unless the guild is configured already (the
// simulator's demo guild: an admin's later choices are kept).
func (s *Service) EnsureSettings(ctx context.Context, g store.GuildSettings) error {
	cur, err := s.st.GetGuildSettings(ctx, g.GuildID)
	if err != nil {
		return err
	}
	if cur.Configured {
		return nil
	}
	if cur.Timezone != "" && g.Timezone == "" {
		g.Timezone = cur.Timezone
	}
	return s.SaveSettings(ctx, g)
}

// AddOptOut stops collecting anything about a person (in one guild, or in
// all when o.GuildID is ""), from the moment it returns.
func (s *Service) AddOptOut(ctx context.Context, o store.OptOut) error {
	if err := s.st.AddOptOut(ctx, o); err != nil {
		return err
	}
	return s.changed(ctx)
}

// RemoveOptOut lifts an opt-out.
func (s *Service) RemoveOptOut(ctx context.Context, userID, guildID string) error {
	if err := s.st.RemoveOptOut(ctx, userID, guildID); err != nil {
		return err
	}
	return s.changed(ctx)
}

// RequestGuildRemoval schedules (or, with cancel, calls off) the deletion
// of a guild's data after the grace period. It returns when it happens.
func (s *Service) RequestGuildRemoval(ctx context.Context, guildID, by string, cancel bool) (time.Time, error) {
	var at *time.Time
	if !cancel {
		now := s.cfg.Now()
		at = &now
	}
	if err := s.st.RequestGuildRemoval(ctx, guildID, by, at); err != nil {
		return time.Time{}, err
	}
	s.audit(ctx, by, map[bool]string{false: "privacy.guild_remove", true: "privacy.guild_remove_cancel"}[cancel], guildID, guildID, "")
	if err := s.changed(ctx); err != nil {
		return time.Time{}, err
	}
	if at == nil {
		return time.Time{}, nil
	}
	return at.Add(s.cfg.Grace), nil
}

func (s *Service) changed(ctx context.Context) error {
	if s.filter == nil {
		return nil
	}
	return s.filter.Changed(ctx)
}

// DeleteRequest asks to delete a person's data.
type DeleteRequest struct {
	UserID  string
	GuildID string // "" for every guild
	By      string // who asked (an account, "admin-token", "member-left", ...)
	Reason  string
	// OptOut also stops collecting about the person from now on (recorded
	// before anything is deleted, so nothing new slips in meanwhile).
	OptOut bool
}

// DeleteDetail is what a deletion did (stored with its request).
type DeleteDetail struct {
	Rows    map[string]int64 `json:"rows"`
	Plugins []PluginResult   `json:"plugins"`
	OptOut  bool             `json:"opt_out,omitempty"`
	Error   string           `json:"error,omitempty"`
}

// DeleteUser deletes everything held about a person: each plugin's
// delete_user hook is called where the plugin runs, then the core's rows
// and every plugin's key-value data tied to the person are deleted. The
// request is recorded (privacy_requests) and audited; a plugin whose hook
// failed makes the request "partial" (its key-value data is deleted all
// the same).
func (s *Service) DeleteUser(ctx context.Context, r DeleteRequest) (store.PrivacyRequest, error) {
	if r.UserID == "" || !event.IsSnowflake(r.UserID) {
		return store.PrivacyRequest{}, fmt.Errorf("privacy: %q is not a Discord user ID", r.UserID)
	}
	start := s.cfg.Now()
	det := DeleteDetail{Plugins: []PluginResult{}}
	status := "done"
	var runErr error
	if r.OptOut {
		if err := s.AddOptOut(ctx, store.OptOut{UserID: r.UserID, GuildID: r.GuildID, CreatedBy: r.By}); err != nil {
			return store.PrivacyRequest{}, err
		}
		det.OptOut = true
	}
	if s.plugins != nil {
		det.Plugins = s.plugins.DeleteUser(ctx, r.GuildID, r.UserID)
		for _, p := range det.Plugins {
			if p.Error != "" {
				status = "partial"
			}
		}
	}
	det.Rows, runErr = s.st.DeleteUser(ctx, r.GuildID, r.UserID, s.cfg.Batch)
	if runErr != nil {
		status, det.Error = "failed", runErr.Error()
	}
	done := s.cfg.Now()
	b, _ := json.Marshal(det)
	req := store.PrivacyRequest{Kind: "delete", UserID: r.UserID, GuildID: r.GuildID, RequestedBy: r.By, Reason: r.Reason,
		Status: status, Detail: b, CreatedAt: start, CompletedAt: &done}
	// The record is written even when deleting failed: a retry is a new request.
	if err := s.st.AddPrivacyRequest(context.WithoutCancel(ctx), &req); err != nil {
		return req, errors.Join(runErr, err)
	}
	s.m.requests.WithLabelValues("delete", status).Inc()
	s.audit(ctx, r.By, "privacy.delete_user", r.UserID, r.GuildID, status)
	return req, runErr
}

// Export returns everything held about a person, and records the request.
func (s *Service) Export(ctx context.Context, guildID, userID, by string) (store.UserExport, error) {
	if userID == "" || !event.IsSnowflake(userID) {
		return store.UserExport{}, fmt.Errorf("privacy: %q is not a Discord user ID", userID)
	}
	ex, err := s.st.ExportUser(ctx, guildID, userID)
	status := "done"
	if err != nil {
		status = "failed"
	}
	n := 0
	for _, rows := range ex.Tables {
		n += len(rows)
	}
	for _, kv := range ex.Plugins {
		n += len(kv)
	}
	done := s.cfg.Now()
	b, _ := json.Marshal(map[string]int{"rows": n})
	req := store.PrivacyRequest{Kind: "export", UserID: userID, GuildID: guildID, RequestedBy: by, Status: status, Detail: b,
		CreatedAt: done, CompletedAt: &done}
	if rerr := s.st.AddPrivacyRequest(context.WithoutCancel(ctx), &req); rerr != nil {
		return ex, errors.Join(err, rerr)
	}
	s.m.requests.WithLabelValues("export", status).Inc()
	s.audit(ctx, by, "privacy.export_user", userID, guildID, status)
	return ex, err
}

func (s *Service) audit(ctx context.Context, actor, action, target, guild, detail string) {
	if actor == "" {
		actor = "system"
	}
	err := s.st.AddAudit(context.WithoutCancel(ctx), store.AuditEntry{Actor: actor, Action: action, Target: target, GuildID: guild,
		Result: "ok", Detail: detail})
	if err != nil {
		s.cfg.Logger.Error("privacy: audit", "action", action, "err", err)
	}
}

// PurgeReport is what one retention run did.
type PurgeReport struct {
	Rows         map[string]int64 `json:"rows"`          // rows deleted per table by retention
	GuildsPurged []string         `json:"guilds_purged"` // guilds whose data was deleted
	Took         time.Duration    `json:"took"`
}

// Purge runs retention once: for every configured guild, rows older than
// its windows are deleted (in bounded batches); then guilds removed longer
// ago than the grace period are deleted entirely.
func (s *Service) Purge(ctx context.Context) (PurgeReport, error) {
	start := s.cfg.Now()
	rep := PurgeReport{Rows: map[string]int64{}, GuildsPurged: []string{}}
	defer func() {
		rep.Took = s.cfg.Now().Sub(start)
		s.m.runSeconds.Observe(rep.Took.Seconds())
		s.m.lastRun.Set(float64(s.cfg.Now().Unix()))
	}()
	settings, err := s.st.ListGuildSettings(ctx)
	if err != nil {
		return rep, err
	}
	now := s.cfg.Now()
	for _, g := range settings {
		for _, t := range store.RetainedTables {
			days := g.Retention.Days(t.Category)
			if days <= 0 {
				continue
			}
			n, err := s.st.PurgeExpired(ctx, t, g.GuildID, now.Add(-time.Duration(days)*24*time.Hour), s.cfg.Batch)
			rep.Rows[t.Table] += n
			s.m.purged.WithLabelValues(t.Table).Add(float64(n))
			if err != nil {
				return rep, err
			}
		}
	}
	// Leavers of guilds that delete them: WatchLeaves handles them as they
	// leave; this catches any it missed (a full bus buffer, a restart, a
	// leave replayed from a file, a guild that just turned the option on).
	for _, g := range settings {
		if !g.DeleteOnLeave {
			continue
		}
		left, err := s.st.LeftMembers(ctx, g.GuildID, 1000)
		if err != nil {
			return rep, err
		}
		for _, u := range left {
			if _, err := s.DeleteUser(ctx, DeleteRequest{UserID: u, GuildID: g.GuildID, By: "member-left",
				Reason: "the member left and the guild deletes leavers' data"}); err != nil {
				return rep, err
			}
		}
	}
	due, err := s.st.GuildsToPurge(ctx, now.Add(-s.cfg.Grace))
	if err != nil {
		return rep, err
	}
	for _, gid := range due {
		rows, err := s.st.PurgeGuild(ctx, gid, s.cfg.Batch)
		status := "done"
		if err != nil {
			status = "failed"
		}
		b, _ := json.Marshal(map[string]any{"rows": rows})
		done := s.cfg.Now()
		req := store.PrivacyRequest{Kind: "guild_delete", GuildID: gid, RequestedBy: "retention", Status: status, Detail: b,
			CreatedAt: done, CompletedAt: &done}
		if rerr := s.st.AddPrivacyRequest(context.WithoutCancel(ctx), &req); rerr != nil {
			s.cfg.Logger.Error("privacy: record guild deletion", "guild", gid, "err", rerr)
		}
		s.audit(ctx, "retention", "privacy.guild_deleted", gid, gid, status)
		s.m.guilds.Inc()
		if err != nil {
			return rep, err
		}
		rep.GuildsPurged = append(rep.GuildsPurged, gid)
		s.cfg.Logger.Info("removed guild's data deleted", "guild", gid, "rows", rows)
	}
	if len(due) > 0 {
		if err := s.changed(ctx); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// WatchLeaves deletes a member's data in a guild when they leave it and
// the guild opted in (delete_on_leave). It reads stored batches (the bus)
// until the channel closes or ctx ends.
func (s *Service) WatchLeaves(ctx context.Context, batches <-chan []event.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case evs, ok := <-batches:
			if !ok {
				return
			}
			for i := range evs {
				ev := &evs[i]
				if ev.Kind != event.KindMemberLeave || ev.UserID == "" || s.filter == nil || !s.filter.DeleteOnLeave(ev.GuildID) {
					continue
				}
				if _, err := s.DeleteUser(ctx, DeleteRequest{UserID: ev.UserID, GuildID: ev.GuildID, By: "member-left",
					Reason: "the member left and the guild deletes leavers' data"}); err != nil && ctx.Err() == nil {
					s.cfg.Logger.Error("privacy: delete a leaving member's data", "guild", ev.GuildID, "user", ev.UserID, "err", err)
				}
			}
		}
	}
}

type metrics struct {
	purged     *prometheus.CounterVec
	runSeconds prometheus.Histogram
	lastRun    prometheus.Gauge
	guilds     prometheus.Counter
	requests   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "spywatcher"
	m := &metrics{
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "retention", Name: "rows_purged_total",
			Help: "Rows deleted by retention because they outlived their guild's window, by table."}, []string{"table"}),
		runSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: "retention", Name: "run_seconds",
			Help: "Duration of a retention run (expired rows and removed guilds).", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: "retention", Name: "last_run_timestamp_seconds",
			Help: "Unix time the last retention run ended."}),
		guilds: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "retention", Name: "guilds_deleted_total",
			Help: "Removed guilds whose data was deleted after the grace period."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "privacy", Name: "requests_total",
			Help: "User data requests carried out, by kind (export, delete) and status (done, partial, failed)."}, []string{"kind", "status"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.purged, m.runSeconds, m.lastRun, m.guilds, m.requests} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
