package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// ScoreRun is one scoring of a guild by one scorer.
type ScoreRun struct {
	ID         string     `json:"run_id"`
	GuildID    string     `json:"guild_id"`
	Scorer     string     `json:"scorer"`
	Version    string     `json:"version,omitempty"`
	Cause      string     `json:"cause"` // schedule | request
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Members    int        `json:"members"`
	Error      string     `json:"error,omitempty"`
}

// MemberScore is one member's score by one scorer.
type MemberScore struct {
	GuildID     string          `json:"-"`
	Scorer      string          `json:"scorer"`
	UserID      string          `json:"user_id"`
	Name        string          `json:"name,omitempty"`
	Score       float64         `json:"score"`
	Factors     json.RawMessage `json:"factors"`
	Explanation string          `json:"explanation"`
	RunID       string          `json:"-"`
	ComputedAt  time.Time       `json:"computed_at"`
	// History marks a score that moved enough to be a point of its own:
	// PutScores keeps the member's previous score, at its time, in the
	// history before replacing it. The newest point of a history is the
	// current score itself, so a first score costs no history row.
	History bool `json:"-"`
}

// ScorePoint is a past score.
type ScorePoint struct {
	At    time.Time `json:"at"`
	Score float64   `json:"score"`
}

// StartScoreRun records a run that begins.
func (s *Store) StartScoreRun(ctx context.Context, r ScoreRun) error {
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO score_runs (id, guild_id, scorer, version, cause, window_from, window_to, started_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), r.ID, r.GuildID, r.Scorer, r.Version, r.Cause, ms(r.From), ms(r.To), ms(r.StartedAt))
	if err != nil {
		return fmt.Errorf("store: start score run: %w", err)
	}
	return nil
}

// FinishScoreRun records the end of a run.
func (s *Store) FinishScoreRun(ctx context.Context, id string, at time.Time, members int, runErr string) error {
	_, err := s.w.ExecContext(ctx, s.q(`UPDATE score_runs SET finished_at = ?, members = ?, error = ? WHERE id = ?`), ms(at), members, runErr, id)
	if err != nil {
		return fmt.Errorf("store: finish score run: %w", err)
	}
	return nil
}

// PutScores stores a batch of scores of one run as the members' latest,
// first moving the previous scores of those marked History into the
// history, in one transaction.
func (s *Store) PutScores(ctx context.Context, scores []MemberScore) error {
	if len(scores) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: put scores: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	const cols = 8
	for start := 0; start < len(scores); start += maxRows(cols) {
		chunk := scores[start:min(len(scores), start+maxRows(cols))]
		if err := archiveScores(ctx, tx, s.q, chunk); err != nil {
			return err
		}
		args := make([]any, 0, len(chunk)*cols)
		for _, m := range chunk {
			args = append(args, m.GuildID, m.Scorer, m.UserID, m.Score, string(m.Factors), m.Explanation, m.RunID, ms(m.ComputedAt))
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO member_scores (guild_id, scorer, user_id, score, factors, explanation, run_id, computed_at)
			VALUES `+placeholders(len(chunk), cols)+` ON CONFLICT (guild_id, scorer, user_id) DO UPDATE SET score = excluded.score,
			factors = excluded.factors, explanation = excluded.explanation, run_id = excluded.run_id, computed_at = excluded.computed_at`), args...); err != nil {
			return fmt.Errorf("store: put scores: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: put scores: %w", err)
	}
	return nil
}

// archiveScores copies the current scores of the rows marked History into
// score_history, one statement per guild and scorer.
func archiveScores(ctx context.Context, tx *sql.Tx, q func(string) string, chunk []MemberScore) error {
	type key struct{ guild, scorer string }
	users := map[key][]any{}
	var order []key
	for _, m := range chunk {
		if !m.History {
			continue
		}
		k := key{m.GuildID, m.Scorer}
		if _, ok := users[k]; !ok {
			order = append(order, k)
		}
		users[k] = append(users[k], m.UserID)
	}
	for _, k := range order {
		ids := users[k]
		args := append([]any{k.guild, k.scorer}, ids...)
		if _, err := tx.ExecContext(ctx, q(`INSERT INTO score_history (guild_id, scorer, user_id, at, score)
			SELECT guild_id, scorer, user_id, computed_at, score FROM member_scores
			WHERE guild_id = ? AND scorer = ? AND user_id IN `+placeholders(1, len(ids))+`
			ON CONFLICT DO NOTHING`), args...); err != nil {
			return fmt.Errorf("store: score history: %w", err)
		}
	}
	return nil
}

// ScorePage is a page of a ranking.
type ScorePage struct {
	Items []MemberScore
	Next  string
}

// RankedScores returns a guild's latest scores by one scorer, highest first
// (ties by user ID), for members still in the guild.
func (s *Store) RankedScores(ctx context.Context, guildID, scorer string, limit int, after string) (ScorePage, error) {
	q := `SELECT sc.user_id, COALESCE(m.name, sc.user_id), sc.score, sc.factors, sc.explanation, sc.computed_at
		FROM member_scores sc JOIN members m ON m.guild_id = sc.guild_id AND m.user_id = sc.user_id AND m.left_at IS NULL
		WHERE sc.guild_id = ? AND sc.scorer = ?`
	args := []any{guildID, scorer}
	if after != "" {
		c, err := decodeCursor(after, "score:"+scorer)
		if err != nil {
			return ScorePage{}, err
		}
		v, err := strconv.ParseFloat(c.Str, 64)
		if err != nil {
			return ScorePage{}, ErrBadCursor
		}
		q += ` AND (sc.score < ? OR (sc.score = ? AND sc.user_id > ?))`
		args = append(args, v, v, c.ID)
	}
	q += ` ORDER BY sc.score DESC, sc.user_id LIMIT ?`
	args = append(args, limit+1)
	var page ScorePage
	page.Items = []MemberScore{}
	err := s.each(ctx, q, args, func(rs *sql.Rows) error {
		var m MemberScore
		var f string
		var at int64
		if err := rs.Scan(&m.UserID, &m.Name, &m.Score, &f, &m.Explanation, &at); err != nil {
			return err
		}
		m.Scorer, m.Factors, m.ComputedAt = scorer, json.RawMessage(f), fromMS(at)
		page.Items = append(page.Items, m)
		return nil
	})
	if err != nil {
		return page, fmt.Errorf("store: ranked scores: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		last := page.Items[limit-1]
		page.Next = cursor{Scope: "score:" + scorer, Str: strconv.FormatFloat(last.Score, 'g', -1, 64), ID: last.UserID}.encode()
	}
	return page, nil
}

// MemberScores returns a member's latest score by every scorer.
func (s *Store) MemberScores(ctx context.Context, guildID, userID string) ([]MemberScore, error) {
	var out []MemberScore
	err := s.each(ctx, `SELECT scorer, score, factors, explanation, computed_at FROM member_scores
		WHERE guild_id = ? AND user_id = ? ORDER BY scorer`, []any{guildID, userID}, func(rs *sql.Rows) error {
		m := MemberScore{GuildID: guildID, UserID: userID}
		var f string
		var at int64
		if err := rs.Scan(&m.Scorer, &m.Score, &f, &m.Explanation, &at); err != nil {
			return err
		}
		m.Factors, m.ComputedAt = json.RawMessage(f), fromMS(at)
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: member scores: %w", err)
	}
	return out, nil
}

// ScoreHistory returns a member's scores by one scorer since a time, oldest
// first, at most limit of the newest.
func (s *Store) ScoreHistory(ctx context.Context, guildID, userID, scorer string, since time.Time, limit int) ([]ScorePoint, error) {
	var out []ScorePoint
	// The current score is the newest point; score_history holds the ones
	// it replaced.
	err := s.each(ctx, `SELECT at, score FROM score_history WHERE guild_id = ? AND user_id = ? AND scorer = ? AND at >= ?
		UNION ALL SELECT computed_at, score FROM member_scores WHERE guild_id = ? AND user_id = ? AND scorer = ? AND computed_at >= ?
		ORDER BY 1 DESC LIMIT ?`, []any{guildID, userID, scorer, ms(since), guildID, userID, scorer, ms(since), limit}, func(rs *sql.Rows) error {
		var p ScorePoint
		var at int64
		if err := rs.Scan(&at, &p.Score); err != nil {
			return err
		}
		p.At = fromMS(at)
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: score history: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// LatestScoreRuns returns the newest run of each scorer in a guild.
func (s *Store) LatestScoreRuns(ctx context.Context, guildID string) ([]ScoreRun, error) {
	var out []ScoreRun
	err := s.each(ctx, `SELECT r.id, r.scorer, r.version, r.cause, r.window_from, r.window_to, r.started_at, r.finished_at, r.members, r.error
		FROM score_runs r WHERE r.guild_id = ? AND r.started_at = (SELECT MAX(started_at) FROM score_runs x
		WHERE x.guild_id = r.guild_id AND x.scorer = r.scorer) ORDER BY r.scorer`, []any{guildID}, func(rs *sql.Rows) error {
		r := ScoreRun{GuildID: guildID}
		var from, to, started int64
		var fin sql.NullInt64
		if err := rs.Scan(&r.ID, &r.Scorer, &r.Version, &r.Cause, &from, &to, &started, &fin, &r.Members, &r.Error); err != nil {
			return err
		}
		r.From, r.To, r.StartedAt, r.FinishedAt = fromMS(from), fromMS(to), fromMS(started), nullMS(fin)
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: score runs: %w", err)
	}
	return out, nil
}

// LastScoreRun returns the newest finished run of a scorer in a guild, or
// ErrNotFound.
func (s *Store) LastScoreRun(ctx context.Context, guildID, scorer string) (ScoreRun, error) {
	runs, err := s.LatestScoreRuns(ctx, guildID)
	if err != nil {
		return ScoreRun{}, err
	}
	for _, r := range runs {
		if r.Scorer == scorer {
			return r, nil
		}
	}
	return ScoreRun{}, ErrNotFound
}

// LatestScores returns every member's latest score by one scorer.
func (s *Store) LatestScores(ctx context.Context, guildID, scorer string) (map[string]float64, error) {
	out := map[string]float64{}
	err := s.each(ctx, `SELECT user_id, score FROM member_scores WHERE guild_id = ? AND scorer = ?`, []any{guildID, scorer},
		func(rs *sql.Rows) error {
			var u string
			var v float64
			if err := rs.Scan(&u, &v); err != nil {
				return err
			}
			out[u] = v
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("store: latest scores: %w", err)
	}
	return out, nil
}
