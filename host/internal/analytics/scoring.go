package analytics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
	"github.com/spywatcher/spywatcher/host/internal/store"
	sdk "github.com/spywatcher/spywatcher/sdk/go/plugin"
)

// ScoreStore is what scoring reads and writes.
type ScoreStore interface {
	GetGuild(ctx context.Context, id string) (store.Guild, error)
	ScoringMembers(ctx context.Context, guildID string, from, to, now time.Time) ([]*store.ScoringMember, error)
	StartScoreRun(ctx context.Context, r store.ScoreRun) error
	FinishScoreRun(ctx context.Context, id string, at time.Time, members int, runErr string) error
	PutScores(ctx context.Context, scores []store.MemberScore) error
	LatestScores(ctx context.Context, guildID, scorer string) (map[string]float64, error)
	LatestScoreRuns(ctx context.Context, guildID string) ([]store.ScoreRun, error)
}

// Scorers runs scorer plugins; *plugin.Host implements it.
type Scorers interface {
	Scorers(guildID string) []plugin.Scorer
	ScoreGuilds() []string
	Score(ctx context.Context, pluginID, guildID string, batch *plugin.ScoreBatch) ([]sdk.Score, error)
}

// ScorePublisher tells live dashboards about new scores; *bus.Local
// implements it.
type ScorePublisher interface {
	PublishScores(ctx context.Context, s []bus.ScoreUpdate)
}

// ScoringConfig tunes scoring. Zero fields take the defaults noted.
type ScoringConfig struct {
	Window    time.Duration // the statistics' window; default 7 days
	BatchSize int           // members per score call; default 500, at most MaxBatch
	Parallel  int           // score calls at once; default GOMAXPROCS
	Now       func() time.Time
	Logger    *slog.Logger
}

// HistoryStep is how far a score must move from the member's previous
// score for a new point in its history.
const HistoryStep = 0.5

// MaxBatch bounds the members of one score call.
const MaxBatch = 5000

// Scoring builds member statistics and runs the scorer plugins per guild,
// periodically and on demand, one run per guild at a time.
type Scoring struct {
	cfg     ScoringConfig
	st      ScoreStore
	plugins Scorers
	pub     ScorePublisher
	log     *slog.Logger

	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
	bg      context.Context
}

// ErrBusy is returned when a guild is being scored already.
var ErrBusy = errors.New("analytics: scoring already running for this guild")

// ErrNoScorers is returned when no scorer runs in the guild.
var ErrNoScorers = errors.New("analytics: no scorer plugin is enabled and granted scores.write in this guild")

// NewScoring returns a scoring service.
func NewScoring(cfg ScoringConfig, st ScoreStore, plugins Scorers, pub ScorePublisher) *Scoring {
	if cfg.Window <= 0 {
		cfg.Window = 7 * 24 * time.Hour
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	cfg.BatchSize = min(cfg.BatchSize, MaxBatch)
	if cfg.Parallel <= 0 {
		cfg.Parallel = runtime.GOMAXPROCS(0)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scoring{cfg: cfg, st: st, plugins: plugins, pub: pub, log: cfg.Logger,
		running: map[string]bool{}, bg: context.Background()}
}

// Active lists the scorers that run in a guild.
func (s *Scoring) Active(guildID string) []string {
	var out []string
	for _, sc := range s.plugins.Scorers(guildID) {
		out = append(out, sc.ID)
	}
	return out
}

// Start keeps ctx as the context of Recompute's background runs until ctx
// ends, then waits for them. Scheduled scoring is the job runner's
// ("scores" job, app/roles.go), which calls RunGuild under a lease.
func (s *Scoring) Start(ctx context.Context) {
	s.mu.Lock()
	s.bg = ctx
	s.mu.Unlock()
	<-ctx.Done()
	s.wg.Wait()
}

// Recompute starts scoring a guild now, in the background, and returns the
// runs it started.
func (s *Scoring) Recompute(ctx context.Context, guildID string) ([]store.ScoreRun, error) {
	job, err := s.begin(ctx, guildID, "request")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	bg := s.bg
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.execute(context.WithoutCancel(bg), job)
	}()
	return job.runs, nil
}

// RunGuild scores a guild with every scorer and waits for the result.
func (s *Scoring) RunGuild(ctx context.Context, guildID, cause string) ([]store.ScoreRun, error) {
	job, err := s.begin(ctx, guildID, cause)
	if err != nil {
		return nil, err
	}
	s.execute(ctx, job)
	return job.runs, nil
}

// job is one guild's scoring by its scorers.
type job struct {
	guild    string
	loc      *time.Location
	from, to time.Time
	scorers  []plugin.Scorer
	runs     []store.ScoreRun
}

func newID() string {
	var b [12]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail
	return hex.EncodeToString(b[:])
}

// begin claims the guild and records the runs.
func (s *Scoring) begin(ctx context.Context, guildID, cause string) (*job, error) {
	scorers := s.plugins.Scorers(guildID)
	if len(scorers) == 0 {
		return nil, ErrNoScorers
	}
	g, err := s.st.GetGuild(ctx, guildID)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(g.Timezone)
	if err != nil {
		loc = time.UTC
	}
	s.mu.Lock()
	if s.running[guildID] {
		s.mu.Unlock()
		return nil, ErrBusy
	}
	s.running[guildID] = true
	s.mu.Unlock()
	now := s.cfg.Now().UTC()
	j := &job{guild: guildID, loc: loc, from: now.Add(-s.cfg.Window), to: now, scorers: scorers}
	for _, sc := range scorers {
		r := store.ScoreRun{ID: newID(), GuildID: guildID, Scorer: sc.ID, Version: sc.Version, Cause: cause,
			From: j.from, To: j.to, StartedAt: now}
		if err := s.st.StartScoreRun(ctx, r); err != nil {
			s.release(guildID)
			return nil, err
		}
		j.runs = append(j.runs, r)
	}
	return j, nil
}

func (s *Scoring) release(guildID string) {
	s.mu.Lock()
	delete(s.running, guildID)
	s.mu.Unlock()
}

// execute builds the statistics once and runs every scorer over them in
// batches, Parallel calls at a time.
func (s *Scoring) execute(ctx context.Context, j *job) {
	defer s.release(j.guild)
	start := time.Now()
	members, err := s.st.ScoringMembers(ctx, j.guild, j.from, j.to, j.to)
	if err != nil {
		s.finish(ctx, j, nil, err)
		return
	}
	stats := make([]sdk.MemberStats, len(members))
	names := make(map[string]string, len(members))
	for i, m := range members {
		stats[i] = MemberStats(m, j.to, j.loc)
		names[m.UserID] = m.Name
	}
	built := time.Since(start)
	type task struct {
		run   int
		batch *plugin.ScoreBatch
	}
	tasks := make(chan task)
	var mu sync.Mutex
	errs := make([]error, len(j.runs))
	counts := make([]int, len(j.runs))
	prev := make([]map[string]float64, len(j.runs))
	for i, r := range j.runs {
		if prev[i], err = s.st.LatestScores(ctx, j.guild, r.Scorer); err != nil {
			s.finish(ctx, j, nil, err)
			return
		}
	}
	// Scorers run on Parallel workers; one writer stores what they return
	// (writeScores). The buffer lets scorers go on while the writer commits.
	scored := make(chan scoredBatch, 2*FlushRows/s.cfg.BatchSize+s.cfg.Parallel)
	written := make(chan struct{})
	go func() {
		defer close(written)
		s.writeScores(ctx, scored, func(b scoredBatch, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if errs[b.run] == nil {
					errs[b.run] = err
				}
				return
			}
			counts[b.run] += len(b.rows)
		})
	}()
	var wg sync.WaitGroup
	for range s.cfg.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range tasks {
				mu.Lock()
				stop := errs[t.run] != nil && errors.Is(errs[t.run], plugin.ErrNotRunnable)
				mu.Unlock()
				if stop {
					continue
				}
				b, err := s.scoreBatch(ctx, j, j.runs[t.run], t.batch, prev[t.run])
				if err != nil {
					mu.Lock()
					if errs[t.run] == nil {
						errs[t.run] = err
					}
					mu.Unlock()
					continue
				}
				b.run = t.run
				scored <- b
			}
		}()
	}
	// Batch by batch, every scorer in turn: a batch's input is encoded
	// once for all of them.
	for lo := 0; lo < len(stats); lo += s.cfg.BatchSize {
		b := plugin.NewScoreBatch(sdk.ScoreRequest{GuildID: j.guild, From: j.from, To: j.to, Members: stats[lo:min(len(stats), lo+s.cfg.BatchSize)]})
		for i := range j.runs {
			select {
			case tasks <- task{run: i, batch: b}:
			case <-ctx.Done():
			}
		}
	}
	close(tasks)
	wg.Wait()
	close(scored)
	<-written
	for i := range j.runs {
		j.runs[i].Members = counts[i]
		if errs[i] != nil {
			j.runs[i].Error = errs[i].Error()
		}
	}
	s.finish(ctx, j, counts, nil)
	s.log.Info("guild scored", "guild", j.guild, "members", len(stats), "scorers", len(j.runs),
		"stats_took", built.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
}

func (s *Scoring) finish(ctx context.Context, j *job, counts []int, err error) {
	at := s.cfg.Now().UTC()
	for i := range j.runs {
		msg := j.runs[i].Error
		if err != nil {
			msg = err.Error()
			j.runs[i].Error = msg
		}
		n := 0
		if counts != nil {
			n = counts[i]
		}
		j.runs[i].FinishedAt = &at
		if ferr := s.st.FinishScoreRun(context.WithoutCancel(ctx), j.runs[i].ID, at, n, msg); ferr != nil {
			s.log.Error("score run not recorded", "run", j.runs[i].ID, "err", ferr)
		}
	}
}

// scoredBatch is one batch's scores by one scorer, ready to store.
type scoredBatch struct {
	run     int
	rows    []store.MemberScore
	updates []bus.ScoreUpdate
}

// FlushRows is about how many scores one transaction stores.
const FlushRows = 20000

// writeScores stores the batches from in, about FlushRows scores per
// transaction, publishes the stored ones, and reports each batch's outcome
// to done. Small transactions made SQLite write the same ranking-index pages
// to its WAL again and again (a batch's scores land all over the index).
func (s *Scoring) writeScores(ctx context.Context, in <-chan scoredBatch, done func(scoredBatch, error)) {
	var pending []scoredBatch
	rows := 0
	flush := func() {
		if len(pending) == 0 {
			return
		}
		all := make([]store.MemberScore, 0, rows)
		for _, b := range pending {
			all = append(all, b.rows...)
		}
		err := s.st.PutScores(ctx, all)
		for _, b := range pending {
			done(b, err)
			if err == nil && s.pub != nil {
				s.pub.PublishScores(ctx, b.updates)
			}
		}
		pending, rows = pending[:0], 0
	}
	for b := range in {
		pending = append(pending, b)
		if rows += len(b.rows); rows >= FlushRows {
			flush()
		}
	}
	flush()
}

// scoreBatch scores one batch with one scorer.
func (s *Scoring) scoreBatch(ctx context.Context, j *job, run store.ScoreRun, batch *plugin.ScoreBatch, prev map[string]float64) (scoredBatch, error) {
	scores, err := s.plugins.Score(ctx, run.Scorer, j.guild, batch)
	if err != nil {
		return scoredBatch{}, err
	}
	at := s.cfg.Now().UTC()
	rows := make([]store.MemberScore, 0, len(scores))
	updates := make([]bus.ScoreUpdate, 0, len(scores))
	for _, sc := range scores {
		f, err := sdk.AppendFactorsJSON(make([]byte, 0, 64*len(sc.Factors)+2), sc.Factors)
		if err != nil {
			return scoredBatch{}, fmt.Errorf("analytics: factors of %s: %w", sc.UserID, err)
		}
		p, had := prev[sc.UserID]
		// History keeps the points where a score moved (by HistoryStep or
		// more), not every run: a stable score costs no row per run, and
		// a first score none (the current score is the newest point).
		rows = append(rows, store.MemberScore{GuildID: j.guild, Scorer: run.Scorer, UserID: sc.UserID, Score: sc.Score,
			Factors: f, Explanation: sc.Explanation, RunID: run.ID, ComputedAt: at, History: had && math.Abs(sc.Score-p) >= HistoryStep})
		u := bus.ScoreUpdate{ID: run.ID + ":" + sc.UserID, GuildID: j.guild, UserID: sc.UserID, Scorer: run.Scorer,
			Score: sc.Score, Explanation: sc.Explanation, At: at}
		if had {
			u.Previous = &p
		}
		updates = append(updates, u)
	}
	return scoredBatch{rows: rows, updates: updates}, nil
}

// Parallel is how many score calls run at once.
func (s *Scoring) Parallel() int { return s.cfg.Parallel }
