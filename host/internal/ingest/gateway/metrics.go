package gateway

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	dispatches     prometheus.Counter
	shed           prometheus.Counter
	duplicates     prometheus.Counter
	gaps           prometheus.Counter
	filtered       prometheus.Counter
	sessions       *prometheus.CounterVec
	disconnects    prometheus.Counter
	memberRequests prometheus.Counter
	shards         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "spywatcher", "gateway"
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	m := &metrics{
		dispatches: counter("dispatches_total", "Gateway dispatches received, on every shard."),
		shed: counter("dispatches_shed_total",
			"Presence updates dropped because a shard's buffer was above its high-water mark."),
		duplicates: counter("dispatches_duplicate_total",
			"Dispatches dropped because their sequence number was already delivered in the session."),
		gaps: counter("sequence_gaps_total",
			"Times a session's sequence numbers skipped ahead (dispatches Discord never delivered)."),
		filtered: counter("dispatches_filtered_total", "Dispatches of guilds outside the allow-list."),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sessions_total",
			Help: "Gateway sessions started (identify) and resumed (resume)."}, []string{"how"}),
		disconnects:    counter("disconnects_total", "Gateway connections lost or closed by Discord."),
		memberRequests: counter("member_requests_total", "Request Guild Members (op 8) sent for backfill."),
		shards: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "shards_held",
			Help: "Shards this instance holds the lease of and runs."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.dispatches, m.shed, m.duplicates, m.gaps, m.filtered, m.sessions,
		m.disconnects, m.memberRequests, m.shards} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
