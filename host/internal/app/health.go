package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// registerHealth adds the metrics that alerts about unreachable services
// and the database pool dashboards read: whether the database (and Redis)
// answer a ping at scrape time, and database/sql's pool statistics
// (go_sql_* with db_name="spywatcher_<pool>").
func (a *App) registerHealth() error {
	ping := func(f func(ctx context.Context) error) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if f(ctx) != nil {
				return 0
			}
			return 1
		}
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "spywatcher_database_up",
			Help: "1 when the database answered a ping at scrape time, else 0."},
			ping(func(ctx context.Context) error { return a.Store.Pools()[firstPool(a)].PingContext(ctx) })),
	}
	if a.Redis != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "spywatcher_redis_up",
			Help: "1 when Redis answered a ping at scrape time, else 0 (absent without Redis)."},
			ping(func(ctx context.Context) error { return a.Redis.Ping(ctx).Err() })))
	}
	for name, db := range a.Store.Pools() {
		cs = append(cs, collectors.NewDBStatsCollector(db, "spywatcher_"+name))
	}
	for _, c := range cs {
		if err := a.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// firstPool is the pool writes go through.
func firstPool(a *App) string {
	if _, ok := a.Store.Pools()["main"]; ok {
		return "main"
	}
	return "write"
}
