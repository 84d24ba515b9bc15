package relay_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// reportP50 reports the median of ds in milliseconds.
func reportP50(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2])/float64(time.Millisecond), "p50-ms")
}

// BenchmarkFirstToken: from the client's POST to the first token of the
// answer through the relay (upstream on loopback, memory store). The hub
// answers a stream it may take over with Connection: close, so the
// client's pooled transport opens a new connection per answer by itself.
func BenchmarkFirstToken(b *testing.B) {
	llm := newFakeLLM(b, 1, false)
	m := store.NewMemory(store.MemoryConfig{})
	defer m.Close()
	n := newBenchNode(b, m, llm)
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		var a answer
		resp := n.ask(&a)
		ev, err := sse.NewReader(resp.Body).Next()
		ds = append(ds, time.Since(start))
		if err != nil || ev.Data != "0" {
			b.Fatalf("%+v %v", ev, err)
		}
		resp.Body.Close()
	}
	reportP50(b, ds)
}

// BenchmarkResume1000: a client resumes an answer of 1,000 tokens from
// its start: from its GET to the first replayed token.
func BenchmarkResume1000(b *testing.B) {
	llm := newFakeLLM(b, 1000, false)
	m := store.NewMemory(store.MemoryConfig{})
	defer m.Close()
	n := newBenchNode(b, m, llm)
	var a answer
	resp := n.ask(&a)
	resp.Body.Close()
	<-n.relay(a.id).Done()
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodGet, n.srv.URL+"/answers/"+a.id, nil)
		resp, err := n.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		ev, err := sse.NewReader(resp.Body).Next()
		ds = append(ds, time.Since(start))
		if err != nil || ev.Data != "0" {
			b.Fatalf("%+v %v", ev, err)
		}
		resp.Body.Close()
	}
	reportP50(b, ds)
}
