// Package prommetrics adapts the hub engine's counters (hub.Metrics) to
// Prometheus collectors for the sluice binary's /metrics endpoint.
//
// The collectors live on their own registry (see New), together with the
// Go runtime and process collectors, so that embedding programs keep
// control of the default registry.
package prommetrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/hub"
)

// Namespace prefixes every metric name.
const Namespace = "sluice"

// Metrics implements hub.Metrics with Prometheus collectors. Its methods
// are safe for concurrent use and allocate nothing on the hot paths
// (Delivered, Published): the labelled children used there are resolved
// once in New.
type Metrics struct {
	reg *prometheus.Registry

	subscribers    prometheus.Gauge
	connections    prometheus.Counter
	disconnections *prometheus.CounterVec
	published      prometheus.Counter
	delivered      prometheus.Counter
	writes         prometheus.Counter
	dropped        prometheus.Counter
	replayEvents   prometheus.Histogram
	replaySeconds  prometheus.Histogram
	resets         *prometheus.CounterVec
}

var _ hub.Metrics = (*Metrics)(nil)

// New returns Metrics registered on a new registry that also holds the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "subscribers",
			Help: "Subscribers connected now.",
		}),
		connections: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "subscriber_connections_total",
			Help: "Subscribers registered since start.",
		}),
		disconnections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "subscriber_disconnections_total",
			Help: "Subscriber responses ended, by reason (client, slow, replay-overflow, lifetime, closed, shutdown, poll, completed, store-error).",
		}, []string{"reason"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "published_events_total",
			Help: "Events appended to the log by publishes, session sends and streams.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "delivered_events_total",
			Help: "Events written to subscribers (one per subscriber per event).",
		}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "delivery_writes_total",
			Help: "Batched writes to subscribers (each carries one or more events).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "dropped_events_total",
			Help: "Events dropped for slow subscribers under the drop policy.",
		}),
		replayEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "replay_events",
			Help:    "Events sent by one replay of history after a Last-Event-ID.",
			Buckets: []float64{0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000},
		}),
		replaySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "replay_duration_seconds",
			Help:    "Time one replay of history took.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100 µs … 26 s
		}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "resets_total",
			Help: "Subscribers whose Last-Event-ID could not be served and got a reset event, by reason (expired, unknown).",
		}, []string{"reason"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.subscribers, m.connections, m.disconnections, m.published, m.delivered,
		m.writes, m.dropped, m.replayEvents, m.replaySeconds, m.resets,
	)
	return m
}

// Registry returns the registry holding the collectors, to register more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns the http.Handler serving the registry in the Prometheus
// exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SubscriberConnected implements hub.Metrics.
func (m *Metrics) SubscriberConnected() {
	m.subscribers.Inc()
	m.connections.Inc()
}

// SubscriberDisconnected implements hub.Metrics.
func (m *Metrics) SubscriberDisconnected(reason hub.DisconnectReason) {
	m.subscribers.Dec()
	m.disconnections.WithLabelValues(string(reason)).Inc()
}

// Published implements hub.Metrics.
func (m *Metrics) Published(n int) { m.published.Add(float64(n)) }

// Delivered implements hub.Metrics.
func (m *Metrics) Delivered(n int) {
	m.delivered.Add(float64(n))
	m.writes.Inc()
}

// Dropped implements hub.Metrics.
func (m *Metrics) Dropped(n int) { m.dropped.Add(float64(n)) }

// Replayed implements hub.Metrics.
func (m *Metrics) Replayed(n int, d time.Duration) {
	m.replayEvents.Observe(float64(n))
	m.replaySeconds.Observe(d.Seconds())
}

// Reset implements hub.Metrics.
func (m *Metrics) Reset(reason string) { m.resets.WithLabelValues(reason).Inc() }
