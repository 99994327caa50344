package ws

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	accepted     prometheus.Counter
	dropped      *prometheus.CounterVec
	frames       prometheus.Counter
	writes       prometheus.Counter
	delivered    prometheus.Counter
	replayed     prometheus.Counter
	resyncs      prometheus.Counter
	fanoutErrors prometheus.Counter
	busDropped   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, h *Hub) (*metrics, error) {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "spywatcher_ws_connections_total",
			Help: "WebSocket connections accepted."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spywatcher_ws_dropped_total",
			Help: "WebSocket connections closed by the hub, by reason (slow_consumer, write_failed, write_timeout, ping_timeout, unauthenticated)."}, []string{"reason"}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "spywatcher_ws_frames_total",
			Help: "Frames written to WebSocket clients (each carries one or more messages)."}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{Name: "spywatcher_ws_writes_total",
			Help: "Write system calls to WebSocket clients (each carries one or more frames)."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "spywatcher_ws_messages_total",
			Help: "Messages (events, scores, plugin events) delivered to this instance's hub."}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "spywatcher_ws_replayed_total",
			Help: "Messages replayed to resuming clients."}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "spywatcher_ws_resyncs_total",
			Help: "Resumes that fell outside the replay buffer (the client was told to refetch)."}),
		fanoutErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "spywatcher_ws_fanout_errors_total",
			Help: "Batches that could not be published to the other instances."}),
		busDropped: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spywatcher_ws_bus_dropped",
			Help: "Bus messages the hub missed because it fell behind."}),
	}
	if reg == nil {
		return m, nil
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "spywatcher_ws_connections",
		Help: "Open WebSocket connections."}, func() float64 { return float64(h.Connections()) })
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "spywatcher_ws_queued",
		Help: "Frames waiting in the connections' send queues."}, func() float64 { return float64(h.queued()) })
	for _, c := range []prometheus.Collector{m.accepted, m.dropped, m.frames, m.writes, m.delivered, m.replayed, m.resyncs, m.fanoutErrors, m.busDropped, open, queued} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
