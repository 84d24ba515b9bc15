// Package bench compares sluice's wire format with other Go SSE libraries in
// one `go test -bench` run. It is its own module so that sluice itself never
// depends on the libraries it is measured against.
package bench

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	gosse "github.com/tmaxmax/go-sse"

	"github.com/sluicehq/sluice/sse"
)

// smallStream is a stream of LLM-token-like events: ~30 bytes of data each.
func smallStream(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "id: %d\nevent: token\ndata: {\"i\":%d,\"t\":\"token-%05d\"}\n\n", i, i%1000, i%100000)
	}
	return b.Bytes()
}

// largeStream holds n events of 1 MiB of data each, in one data line.
func largeStream(n int) []byte {
	payload := strings.Repeat("0123456789abcdef", 1<<16)
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "id: %d\ndata: %s\n\n", i, payload)
	}
	return b.Bytes()
}

type parser struct {
	name string
	read func(r io.Reader) (events int, err error)
}

var parsers = []parser{
	{"sluice", func(r io.Reader) (int, error) {
		n := 0
		for _, err := range sse.Read(r) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}},
	{"go-sse", func(r io.Reader) (int, error) {
		n := 0
		for _, err := range gosse.Read(r, &gosse.ReadConfig{MaxEventSize: 4 << 20}) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}},
}

func BenchmarkParse(b *testing.B) {
	workloads := []struct {
		name   string
		stream []byte
		events int
	}{
		{"small", smallStream(10_000), 10_000},
		{"large", largeStream(8), 8},
	}
	for _, w := range workloads {
		for _, p := range parsers {
			b.Run(w.name+"/"+p.name, func(b *testing.B) {
				b.SetBytes(int64(len(w.stream)))
				b.ReportAllocs()
				r := bytes.NewReader(w.stream)
				for b.Loop() {
					r.Reset(w.stream)
					n, err := p.read(r)
					if err != nil || n != w.events {
						b.Fatalf("%d events, %v", n, err)
					}
				}
				b.ReportMetric(float64(w.events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	b.Run("single-line/sluice", func(b *testing.B) {
		e := sse.Event{ID: "12345", Type: "token", Data: `{"i":1,"t":"token-00001"}`}
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = sse.AppendEvent(buf[:0], e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("single-line/go-sse", func(b *testing.B) {
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			m := &gosse.Message{ID: gosse.ID("12345"), Type: gosse.Type("token")}
			m.AppendData(`{"i":1,"t":"token-00001"}`)
			buf.Reset()
			if _, err := m.WriteTo(&buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("multi-line/sluice", func(b *testing.B) {
		e := sse.Event{Data: strings.Repeat("a line of data\n", 16)}
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = sse.AppendEvent(buf[:0], e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSameEvents makes sure both parsers agree on the benchmark streams, so
// the comparison is between equal work.
func TestSameEvents(t *testing.T) {
	for _, stream := range [][]byte{smallStream(100), largeStream(2)} {
		var counts []int
		for _, p := range parsers {
			n, err := p.read(bytes.NewReader(stream))
			if err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
			counts = append(counts, n)
		}
		if counts[0] != counts[1] {
			t.Fatalf("event counts differ: %v", counts)
		}
	}
}
