package plugin

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	calls       *prometheus.CounterVec   // plugin, hook, result
	callSeconds *prometheus.HistogramVec // plugin, hook
	hostCalls   *prometheus.CounterVec   // plugin, function, result
	delivered   *prometheus.CounterVec   // plugin
	shed        *prometheus.CounterVec   // plugin, guild
	quarantines *prometheus.CounterVec   // plugin
	counters    *prometheus.CounterVec   // plugin, guild, name
	logsDropped *prometheus.CounterVec   // plugin
	evictions   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, h *Host) (*metrics, error) {
	const ns, sub = "spywatcher", "plugin"
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "calls_total",
			Help: "Hook calls by plugin, hook and result (ok, error, timeout, trap)."}, []string{"plugin", "hook", "result"}),
		callSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "call_seconds",
			Help: "Hook call latency.", Buckets: prometheus.ExponentialBuckets(0.00001, 3, 12)}, []string{"plugin", "hook"}),
		hostCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "host_calls_total",
			Help: "Host function calls by plugin, function and result (ok, denied, error)."}, []string{"plugin", "function", "result"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_delivered_total",
			Help: "Events delivered to on_events."}, []string{"plugin"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_shed_total",
			Help: "Events dropped because a plugin's queue in a guild was full."}, []string{"plugin", "guild"}),
		quarantines: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "quarantines_total",
			Help: "Times a plugin was quarantined in a guild after repeated failures."}, []string{"plugin"}),
		counters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "counter_total",
			Help: "Counters plugins publish with the metric host function."}, []string{"plugin", "guild", "name"}),
		logsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "logs_dropped_total",
			Help: "Plugin log lines dropped by the rate limit."}, []string{"plugin"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "instance_evictions_total",
			Help: "Idle instances closed to stay within the memory bound or because they went stale."}),
	}
	if reg == nil {
		return m, nil
	}
	idle := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "instances_idle",
		Help: "Idle plugin instances kept for reuse."}, func() float64 { n, _ := h.pool.stats(); return float64(n) })
	mem := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "instance_memory_bytes",
		Help: "Memory of all live plugin instances (linear plus kernel memory)."}, func() float64 { _, b := h.pool.stats(); return float64(b) })
	quarantined := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "quarantined",
		Help: "Plugin-guild pairs quarantined now."}, func() float64 { return float64(h.quarantinedCount()) })
	for _, c := range []prometheus.Collector{m.calls, m.callSeconds, m.hostCalls, m.delivered, m.shed, m.quarantines,
		m.counters, m.logsDropped, m.evictions, idle, mem, quarantined} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
