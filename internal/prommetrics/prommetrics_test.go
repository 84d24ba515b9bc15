package prommetrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/hub"
)

func TestCounters(t *testing.T) {
	m := New()
	m.SubscriberConnected()
	m.SubscriberConnected()
	m.SubscriberDisconnected(hub.ReasonSlow)
	m.Published(3)
	m.Delivered(5)
	m.Delivered(2)
	m.Dropped(4)
	m.Replayed(10, 2*time.Millisecond)
	m.Reset("expired")

	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"subscribers", testutil.ToFloat64(m.subscribers), 1},
		{"connections", testutil.ToFloat64(m.connections), 2},
		{"disconnections slow", testutil.ToFloat64(m.disconnections.WithLabelValues("slow")), 1},
		{"published", testutil.ToFloat64(m.published), 3},
		{"delivered", testutil.ToFloat64(m.delivered), 7},
		{"writes", testutil.ToFloat64(m.writes), 2},
		{"dropped", testutil.ToFloat64(m.dropped), 4},
		{"resets expired", testutil.ToFloat64(m.resets.WithLabelValues("expired")), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestHandlerExposesHubAndRuntimeMetrics(t *testing.T) {
	m := New()
	m.Replayed(7, time.Millisecond)
	m.Published(1)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"sluice_published_events_total 1",
		"sluice_replay_events_sum 7",
		"sluice_replay_events_count 1",
		"sluice_replay_duration_seconds_count 1",
		"sluice_subscribers 0",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	m := New()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				m.SubscriberConnected()
				m.Delivered(1)
				m.SubscriberDisconnected(hub.ReasonClient)
			}
		})
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.delivered); got != 8000 {
		t.Errorf("delivered = %v, want 8000", got)
	}
	if got := testutil.ToFloat64(m.subscribers); got != 0 {
		t.Errorf("subscribers = %v, want 0", got)
	}
}
