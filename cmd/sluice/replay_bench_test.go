package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
)

// BenchmarkReplayTwoHubs is a client resuming on another hub (issue 7:
// replay of 1,000 events <= 5 ms): 10,000 events are published through
// hub A, then each iteration opens a new connection to hub B, another hub
// on the same log, with the Last-Event-ID of the event 1,000 from the end,
// and reads until the 1,000th event, checking the ids are the log's. The
// time per iteration is the replay as the client sees it: connection,
// request, the store's History, and the writes. p50-ms and p99-ms are
// over the iterations.
//
//	source scripts/services.sh; trap stop_services EXIT
//	go test -run NONE -bench ReplayTwoHubs -benchtime 200x -count 3 ./cmd/sluice/
func BenchmarkReplayTwoHubs(b *testing.B) {
	for _, kind := range []string{"memory", "redis", "nats"} {
		b.Run(kind, func(b *testing.B) {
			stA, stB := benchStores(b, kind)
			hubA, srv := twoHubs(b, stA, stB, hub.Config{})
			const total, replay = 10_000, 1_000
			ids := make([]string, 0, total)
			data := fmt.Sprintf("%0100d", 0) // 100 bytes, as in the other benchmarks
			for range total {
				id, err := hubA.Publish(context.Background(), hub.Message{Topics: []string{"replay"}, Event: sse.Event{Data: data}})
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, id)
			}
			want := ids[total-replay:]
			cursor := ids[total-replay-1]
			addr := srv.Listener.Addr().String()
			req := "GET /?topic=replay HTTP/1.1\r\nHost: hub\r\nLast-Event-ID: " + cursor + "\r\n\r\n"
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if err := replayOnce(addr, req, want); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(took)
			ms := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))]) / 1e6 }
			b.ReportMetric(ms(0.5), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
		})
	}
}

// replayOnce sends req on a new connection and reads the events of the
// response until those of want arrived, in order.
func replayOnce(addr, req string, want []string) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte(req)); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 64<<10), nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("replay: %s", resp.Status)
	}
	rd := sse.NewReader(resp.Body)
	i := 0
	for i < len(want) {
		ev, err := rd.Next()
		if err != nil {
			return fmt.Errorf("after %d of %d events: %w", i, len(want), err)
		}
		if ev.Data == "" {
			continue // the priming event
		}
		if ev.ID != want[i] {
			return fmt.Errorf("event %d: id %q, want %q", i, ev.ID, want[i])
		}
		i++
	}
	return nil
}
