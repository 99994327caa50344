package main

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/spywatcher/spywatcher/sdk/go/event"
	"github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// PermContent is the permission that lets the host hand message text to
// the plugin.
const PermContent = "message.content.read"

// Limits of the work one call does, so that a call stays well inside the
// manifest's timeout whatever the backlog.
const (
	purgeBatch      = 200 // messages purged per tick
	deleteUserBatch = 200 // messages removed per delete_user call or tick
)

type logger struct{}

// settings is a guild's configuration of the plugin (the manifest's
// config_schema), with defaults applied.
type settings struct {
	retention      time.Duration
	keepContent    bool
	ignoreBots     bool
	ignoreChannels map[string]bool
	maxEdits       int
}

func loadSettings(ctx *plugin.Context) settings {
	cfg := ctx.Config()
	s := settings{
		retention:   time.Duration(ctx.ConfigFloat("retention_days", 30) * float64(24*time.Hour)),
		keepContent: true,
		maxEdits:    int(ctx.ConfigFloat("max_edits", 50)),
	}
	if v, ok := cfg["keep_content"].(bool); ok {
		s.keepContent = v
	}
	if v, ok := cfg["ignore_bots"].(bool); ok {
		s.ignoreBots = v
	}
	if list, ok := cfg["ignore_channels"].([]any); ok {
		s.ignoreChannels = map[string]bool{}
		for _, c := range list {
			if id, ok := c.(string); ok {
				s.ignoreChannels[id] = true
			}
		}
	}
	if s.maxEdits < 1 {
		s.maxEdits = 1
	}
	return s
}

// Version is the message as it was at one moment: as created, or after an
// edit.
type Version struct {
	At time.Time `json:"at"`
	// Content is the text, kept only when message.content.read is granted
	// and the guild keeps content; ContentRecorded says whether it was.
	Content         string `json:"content,omitempty"`
	ContentRecorded bool   `json:"content_recorded"`
	Length          int    `json:"length"`
	Attachments     int    `json:"attachments,omitempty"`
	Embeds          int    `json:"embeds,omitempty"`
}

// Record is everything the plugin keeps about one message; the routes
// return it as is.
type Record struct {
	MessageID  string `json:"message_id"`
	ChannelID  string `json:"channel_id"`
	AuthorID   string `json:"author_id,omitempty"`
	AuthorName string `json:"author_name,omitempty"`
	// CreatedAt is when the message was posted; nil when the plugin did not
	// see its creation (posted before logging began).
	CreatedAt *time.Time `json:"created_at,omitempty"`
	// History lists the versions oldest first: the original (if seen), then
	// each edit. At most max_edits edits are kept (the oldest are dropped;
	// EditsDropped counts them).
	History      []Version  `json:"history"`
	Edits        int        `json:"edits"`
	EditsDropped int        `json:"edits_dropped,omitempty"`
	LastEditAt   *time.Time `json:"last_edit_at,omitempty"`
	DeletedAt    *time.Time `json:"deleted_at,omitempty"`
	Bulk         bool       `json:"bulk_delete,omitempty"`
	// LastChange is the time of the latest create, edit or delete; the
	// record expires retention_days after it.
	LastChange   time.Time `json:"last_change"`
	MentionCount int       `json:"mentions,omitempty"`
	ReplyTo      string    `json:"reply_to,omitempty"`
}

// keys returns every key the record occupies besides the expiry index.
func (r *Record) keys(id uint64) []string {
	ks := []string{recordKey(r.ChannelID, id)}
	if r.LastEditAt != nil {
		ks = append(ks, editKey(*r.LastEditAt, r.ChannelID, r.MessageID))
	}
	if r.DeletedAt != nil {
		ks = append(ks, deleteKey(*r.DeletedAt, r.ChannelID, r.MessageID))
	}
	if r.AuthorID != "" {
		ks = append(ks, userKey(r.AuthorID, r.ChannelID, r.MessageID))
	}
	return ks
}

// store is the plugin's view of its key-value storage, with the author
// tagged on every key about them so the host's user deletion finds it.
type store struct {
	ctx      *plugin.Context
	quotaHit int
}

func (s *store) set(key string, value []byte, user string) error {
	var err error
	if user != "" {
		err = s.ctx.KVSetUser(key, value, user)
	} else {
		err = s.ctx.KVSet(key, value)
	}
	var he *plugin.HostError
	if errors.As(err, &he) && he.Code == "quota" {
		s.quotaHit++ // the guild's storage is full: skip, retention frees room
		return nil
	}
	return err
}

// get returns the record under key, or nil when there is none (or it is
// unreadable, and then overwritten by the next change).
func (s *store) get(key string) (*Record, error) {
	v, found, err := s.ctx.KVGet(key)
	if err != nil || !found {
		return nil, err
	}
	var r Record
	if unmarshal(v, &r) != nil {
		return nil, nil
	}
	return &r, nil
}

func unmarshal(b []byte, r *Record) error { return json.Unmarshal(b, r) }

// save writes the record and moves its index entries from what they were
// (old, nil for a new record) to what they are now.
func (s *store) save(r *Record, id uint64, old *Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.set(recordKey(r.ChannelID, id), b, r.AuthorID); err != nil {
		return err
	}
	if old != nil && !old.LastChange.Equal(r.LastChange) {
		if err := s.ctx.KVDelete(expiryKey(old.LastChange, old.ChannelID, old.MessageID)); err != nil {
			return err
		}
	}
	others, _ := json.Marshal(r.keys(id))
	if err := s.set(expiryKey(r.LastChange, r.ChannelID, r.MessageID), others, r.AuthorID); err != nil {
		return err
	}
	rk := recordKey(r.ChannelID, id)
	if r.LastEditAt != nil && (old == nil || old.LastEditAt == nil || !old.LastEditAt.Equal(*r.LastEditAt)) {
		if old != nil && old.LastEditAt != nil {
			if err := s.ctx.KVDelete(editKey(*old.LastEditAt, old.ChannelID, old.MessageID)); err != nil {
				return err
			}
		}
		if err := s.set(editKey(*r.LastEditAt, r.ChannelID, r.MessageID), []byte(rk), r.AuthorID); err != nil {
			return err
		}
	}
	if r.DeletedAt != nil && (old == nil || old.DeletedAt == nil) {
		if err := s.set(deleteKey(*r.DeletedAt, r.ChannelID, r.MessageID), []byte(rk), r.AuthorID); err != nil {
			return err
		}
	}
	if r.AuthorID != "" && (old == nil || old.AuthorID == "") {
		if err := s.set(userKey(r.AuthorID, r.ChannelID, r.MessageID), []byte(rk), r.AuthorID); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes a record and all its index entries.
func (s *store) remove(r *Record, id uint64) error {
	for _, k := range append(r.keys(id), expiryKey(r.LastChange, r.ChannelID, r.MessageID)) {
		if err := s.ctx.KVDelete(k); err != nil {
			return err
		}
	}
	return nil
}

func (logger) OnEvents(ctx *plugin.Context, events []plugin.Event) error {
	cfg := loadSettings(ctx)
	content := cfg.keepContent && ctx.Granted(PermContent)
	st := &store{ctx: ctx}
	var created, edited, deleted int
	for i := range events {
		ev := &events[i]
		channel := ev.ChannelID()
		if channel == "" || cfg.ignoreChannels[channel] {
			continue
		}
		d, err := ev.Data()
		if err != nil {
			continue // a payload this version cannot read: nothing to log
		}
		at := ev.At()
		switch d := d.(type) {
		case *event.MessageCreate:
			if cfg.ignoreBots && d.User != nil && d.User.Bot {
				continue
			}
			id, err := strconv.ParseUint(d.MessageID, 10, 64)
			if err != nil {
				continue
			}
			old, err := st.get(recordKey(channel, id))
			if err != nil {
				return err
			}
			if old != nil && old.CreatedAt != nil {
				continue // already logged
			}
			r := &Record{MessageID: d.MessageID, ChannelID: channel}
			if old != nil { // an edit or delete arrived first; keep what it recorded
				cp := *old
				r = &cp
			}
			r.AuthorID = ev.UserID()
			if d.User != nil {
				r.AuthorName = d.User.GlobalName
				if r.AuthorName == "" {
					r.AuthorName = d.User.Username
				}
			}
			r.CreatedAt = &at
			r.MentionCount, r.ReplyTo = len(d.Mentions), d.ReplyTo
			v := Version{At: at, Length: d.Length, Attachments: d.Attachments, Embeds: d.Embeds}
			if content {
				v.Content, v.ContentRecorded = d.Content, true
			}
			r.History = append([]Version{v}, r.History...)
			if r.LastChange.Before(at) {
				r.LastChange = at
			}
			if err := st.save(r, id, old); err != nil {
				return err
			}
			created++
		case *event.MessageUpdate:
			id, err := strconv.ParseUint(d.MessageID, 10, 64)
			if err != nil {
				continue
			}
			old, err := st.get(recordKey(channel, id))
			if err != nil {
				return err
			}
			r := &Record{MessageID: d.MessageID, ChannelID: channel, AuthorID: ev.UserID()}
			if old != nil {
				cp := *old
				cp.History = append([]Version(nil), old.History...)
				r = &cp
			}
			when := at
			if !d.EditedAt.IsZero() {
				when = d.EditedAt.UTC()
			}
			v := Version{At: when, Length: d.Length, Attachments: d.Attachments, Embeds: d.Embeds}
			if content {
				v.Content, v.ContentRecorded = d.Content, true
			}
			r.History = append(r.History, v)
			r.Edits++
			if r.CreatedAt != nil && len(r.History) > cfg.maxEdits+1 {
				// Keep the original and the newest max_edits edits.
				drop := len(r.History) - cfg.maxEdits - 1
				r.History = append(r.History[:1], r.History[1+drop:]...)
				r.EditsDropped += drop
			} else if r.CreatedAt == nil && len(r.History) > cfg.maxEdits {
				drop := len(r.History) - cfg.maxEdits
				r.History = r.History[drop:]
				r.EditsDropped += drop
			}
			r.LastEditAt = &at
			if r.LastChange.Before(at) {
				r.LastChange = at
			}
			if err := st.save(r, id, old); err != nil {
				return err
			}
			edited++
		case *event.MessageDelete:
			id, err := strconv.ParseUint(d.MessageID, 10, 64)
			if err != nil {
				continue
			}
			old, err := st.get(recordKey(channel, id))
			if err != nil {
				return err
			}
			r := &Record{MessageID: d.MessageID, ChannelID: channel, AuthorID: ev.UserID(), History: []Version{}}
			if old != nil {
				if old.DeletedAt != nil {
					continue // a second delete of the same message
				}
				cp := *old
				r = &cp
			}
			r.DeletedAt, r.Bulk = &at, d.Bulk
			if r.LastChange.Before(at) {
				r.LastChange = at
			}
			if err := st.save(r, id, old); err != nil {
				return err
			}
			deleted++
		}
	}
	count(ctx, "messages_logged", created)
	count(ctx, "edits_logged", edited)
	count(ctx, "deletes_logged", deleted)
	if st.quotaHit > 0 {
		count(ctx, "writes_over_quota", st.quotaHit)
		ctx.Log("warn", "storage quota reached: some messages were not logged; lower retention_days or raise the quota", //nolint:errcheck // best effort
			map[string]any{"skipped_writes": st.quotaHit})
	}
	return nil
}

// count adds to a counter metric if metrics.write is granted.
func count(ctx *plugin.Context, name string, n int) {
	if n > 0 {
		ctx.Count(name, float64(n)) //nolint:errcheck // optional: denied without metrics.write
	}
}

// Tick purges records whose last change is older than the retention, and
// goes on with unfinished user deletions; both in bounded batches.
func (logger) Tick(ctx *plugin.Context, now time.Time) error {
	cfg := loadSettings(ctx)
	n, err := purge(ctx, now.Add(-cfg.retention), purgeBatch)
	if err != nil {
		return err
	}
	count(ctx, "messages_purged", n)
	pending, _, err := ctx.KVList("p/", "", 10)
	if err != nil {
		return err
	}
	for _, p := range pending {
		if _, err := deleteUser(ctx, p.Key[2:], deleteUserBatch); err != nil {
			return err
		}
	}
	return nil
}

// purge removes up to limit messages whose last change is before cutoff,
// oldest first, and returns how many it removed.
func purge(ctx *plugin.Context, cutoff time.Time, limit int) (int, error) {
	removed := 0
	for removed < limit {
		entries, _, err := ctx.KVList("t/", "", min(100, limit-removed))
		if err != nil {
			return removed, err
		}
		if len(entries) == 0 {
			return removed, nil
		}
		for _, e := range entries {
			at, ok := expiryTime(e.Key)
			if ok && !at.Before(cutoff) {
				return removed, nil
			}
			var keys []string
			json.Unmarshal(e.Value, &keys) //nolint:errcheck // a bad value still lets the expiry key go
			for _, k := range append(keys, e.Key) {
				if err := ctx.KVDelete(k); err != nil {
					return removed, err
				}
			}
			removed++
		}
	}
	return removed, nil
}

// DeleteUser removes every message the user wrote. What does not fit in
// one call is left to the next ticks (p/<user> marks it).
func (logger) DeleteUser(ctx *plugin.Context, userID string) error {
	_, err := deleteUser(ctx, userID, deleteUserBatch)
	return err
}

// deleteUser removes up to limit of the user's messages and reports
// whether it finished.
func deleteUser(ctx *plugin.Context, userID string, limit int) (bool, error) {
	if !event.IsSnowflake(userID) {
		return true, ctx.KVDelete("p/" + userID)
	}
	st := &store{ctx: ctx}
	prefix := "u/" + userID + "/"
	for done := 0; done < limit; {
		entries, _, err := ctx.KVList(prefix, "", min(100, limit-done))
		if err != nil {
			return false, err
		}
		if len(entries) == 0 {
			return true, ctx.KVDelete("p/" + userID)
		}
		for _, e := range entries {
			rk := string(e.Value)
			id := idOfRecordKey(rk)
			r, err := st.get(rk)
			if err != nil {
				return false, err
			}
			if r != nil {
				if err := st.remove(r, id); err != nil {
					return false, err
				}
			}
			if err := ctx.KVDelete(e.Key); err != nil {
				return false, err
			}
			done++
		}
	}
	return false, ctx.KVSet("p/"+userID, []byte("1"))
}

// idOfRecordKey returns the message ID of a record key c/<channel>/<inv id>.
func idOfRecordKey(k string) uint64 {
	i := len(k) - 20
	if i < 0 {
		return 0
	}
	inv, err := strconv.ParseUint(k[i:], 10, 64)
	if err != nil {
		return 0
	}
	return maxID - inv
}
