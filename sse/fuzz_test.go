package sse

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzReader checks, for any input, that the parser never panics, never
// returns an event over its size bound, never grows its buffer past it, and
// that how the input is split into reads never changes what it yields.
func FuzzReader(f *testing.F) {
	for _, tt := range parseTests {
		f.Add([]byte(tt.in), uint8(1))
	}
	f.Add([]byte("data: "+strings.Repeat("x", 600)+"\n\n"), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		const max = 512
		configure := func(r *Reader) { r.MaxEventSize = max }
		whole := readAll(strings.NewReader(string(in)), configure)
		split := readAll(&chunkReader{data: in, n: int(chunk%16) + 1}, configure)
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("chunking changed the result:\nwhole %+v\nsplit %+v", whole, split)
		}
		if whole.Err != nil && !errors.Is(whole.Err, ErrEventTooLarge) {
			t.Fatalf("unexpected error %v", whole.Err)
		}
		for _, e := range whole.Events {
			if len(e.Data) > 3*max { // U+FFFD may triple invalid bytes
				t.Fatalf("event data of %d bytes over the %d bound", len(e.Data), max)
			}
			if !utf8.ValidString(e.Data) || !utf8.ValidString(e.ID) || !utf8.ValidString(e.Type) {
				t.Fatalf("invalid UTF-8 in %q", e)
			}
			if strings.ContainsRune(e.ID, 0) || strings.ContainsAny(e.ID+e.Type, "\r\n") {
				t.Fatalf("id or type with NUL, CR or LF: %q", e)
			}
		}
		rd := NewReader(&chunkReader{data: in, n: 3})
		configure(rd)
		for range rd.All() {
		}
		if cap(rd.buf) > 2*max+initialReadBufferSize {
			t.Fatalf("buffer grew to %d for a %d bound", cap(rd.buf), max)
		}
	})
}

// FuzzRoundTrip checks that every valid event, once encoded, parses back to
// itself (data line breaks normalised to LF, the empty type to "message",
// retry to whole milliseconds, invalid UTF-8 to U+FFFD), and that every
// invalid one is refused.
func FuzzRoundTrip(f *testing.F) {
	f.Add("1", "token", "hello", int64(0), "ping")
	f.Add("", "", "", int64(3000), "")
	f.Add(" lead", " sp", " x\r\ny\rz\n", int64(1), "a\nb")
	f.Add("bad\nid", "t", "d", int64(0), "")
	f.Add("id", "bad\rtype", "d", int64(0), "")
	f.Add("\x00", "", "", int64(-1), "\r\n")
	f.Add("\xff", "\xfe", "\xe2\x82", int64(5), "\xc3")
	f.Fuzz(func(t *testing.T, id, typ, data string, retryMs int64, comment string) {
		e := Event{ID: id, Type: typ, Data: data, Retry: time.Duration(retryMs) * time.Millisecond}
		if retryMs > maxRetryMillis || retryMs < -maxRetryMillis {
			return
		}
		wire, err := AppendEvent(nil, e)
		if err != nil {
			if e.Validate() == nil {
				t.Fatalf("valid event refused: %v", err)
			}
			return
		}
		if strings.ContainsAny(id+typ, "\r\n\x00") || e.Retry < 0 {
			t.Fatalf("invalid event %q encoded as %q", e, wire)
		}
		wire = AppendComment(wire, comment)
		var comments []string
		rd := NewReader(strings.NewReader(string(wire)))
		rd.OnComment = func(c string) { comments = append(comments, c) }
		got, err := rd.Next()
		if err != nil {
			t.Fatalf("%q: %v", wire, err)
		}
		want := Event{
			ID:    decodeUTF8([]byte(id)),
			Type:  decodeUTF8([]byte(typ)),
			Data:  decodeUTF8([]byte(normalizeLineBreaks(data))),
			Retry: e.Retry.Truncate(time.Millisecond),
		}
		if want.Type == "" {
			want.Type = "message"
		}
		if got != want {
			t.Fatalf("encoded %q as %q, parsed back %q", e, wire, got)
		}
		if _, err := rd.Next(); err != io.EOF {
			t.Fatalf("more than one event from %q: %v", wire, err)
		}
		if got, want := strings.Join(comments, "\n"), decodeUTF8([]byte(normalizeLineBreaks(comment))); got != want {
			t.Fatalf("comment %q read back as %q", want, got)
		}
	})
}
