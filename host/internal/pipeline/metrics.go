package pipeline

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	reg          prometheus.Registerer
	received     *prometheus.CounterVec
	stored       *prometheus.CounterVec
	shed         *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	duplicates   prometheus.Counter
	backpressure prometheus.Counter
	retries      prometheus.Counter
	spilled      prometheus.Counter
	lastStored   prometheus.Gauge
	batchSize    prometheus.Histogram
	writeSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "spywatcher", "pipeline"
	m := &metrics{
		reg: reg,
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_received_total",
			Help: "Events offered to the pipeline by any source, by kind."}, []string{"kind"}),
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_stored_total",
			Help: "Events newly stored, by kind."}, []string{"kind"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_shed_total",
			Help: "Events dropped because the queue was above its high-water mark, by kind."}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_rejected_total",
			Help: "Events refused, by reason."}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_duplicate_total",
			Help: "Events dropped because their ID was already seen or stored."}),
		backpressure: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "backpressure_waits_total",
			Help: "Times a source had to wait for room in the queue."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "store_retries_total",
			Help: "Batch writes retried after a transient store failure."}),
		spilled: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_spilled_total",
			Help: "Events written to a dead-letter spill file instead of the store."}),
		lastStored: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "last_stored_timestamp_seconds",
			Help: "Unix time of the last successful batch write."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_size_events",
			Help: "Events per stored batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}), // up to 65,536: the default maximum is 32,768
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_write_seconds",
			Help: "Time to store a batch, retries included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.received, m.stored, m.shed, m.rejected, m.duplicates, m.backpressure,
		m.retries, m.spilled, m.lastStored, m.batchSize, m.writeSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// queueDepth exposes the queue length as a gauge read at scrape time.
func (m *metrics) queueDepth(f func() float64) error {
	if m.reg == nil {
		return nil
	}
	return m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "spywatcher", Subsystem: "pipeline",
		Name: "queue_depth_events", Help: "Events waiting to be stored."}, f))
}
