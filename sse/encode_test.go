package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"data only", Event{Data: "hello"}, "data: hello\n\n"},
		{"empty data still dispatches", Event{}, "data: \n\n"},
		{"all fields", Event{ID: "42", Type: "update", Data: "x", Retry: 1500 * time.Millisecond}, "id: 42\nevent: update\nretry: 1500\ndata: x\n\n"},
		{"LF splits data", Event{Data: "a\nb"}, "data: a\ndata: b\n\n"},
		{"CRLF splits data", Event{Data: "a\r\nb"}, "data: a\ndata: b\n\n"},
		{"CR splits data", Event{Data: "a\rb"}, "data: a\ndata: b\n\n"},
		{"trailing LF kept as empty line", Event{Data: "a\n"}, "data: a\ndata: \n\n"},
		{"injection stays data", Event{Data: "x\n\nid: evil\nevent: admin\ndata: y"}, "data: x\ndata: \ndata: id: evil\ndata: event: admin\ndata: data: y\n\n"},
		{"leading space in data kept", Event{Data: " x"}, "data:  x\n\n"},
		{"retry rounds down to ms", Event{Data: "x", Retry: 1999 * time.Microsecond}, "retry: 1\ndata: x\n\n"},
		{"retry under 1ms is 0", Event{Data: "x", Retry: time.Microsecond}, "retry: 0\ndata: x\n\n"},
		{"id with spaces", Event{ID: " a b ", Data: "x"}, "id:  a b \ndata: x\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendEvent([]byte("prefix|"), tt.e)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix|"+tt.want {
				t.Errorf("got %q, want %q", got, "prefix|"+tt.want)
			}
		})
	}
}

func TestAppendEventRejectsInjection(t *testing.T) {
	tests := []struct {
		e    Event
		want error
	}{
		{Event{ID: "1\n2"}, ErrInvalidID},
		{Event{ID: "1\r2"}, ErrInvalidID},
		{Event{ID: "1\x002"}, ErrInvalidID},
		{Event{Type: "a\nb"}, ErrInvalidType},
		{Event{Type: "a\rb"}, ErrInvalidType},
		{Event{Type: "a\x00"}, ErrInvalidType},
		{Event{Retry: -time.Second}, ErrInvalidRetry},
	}
	for _, tt := range tests {
		dst := []byte("keep")
		got, err := AppendEvent(dst, tt.e)
		if !errors.Is(err, tt.want) {
			t.Errorf("%q: err = %v, want %v", tt.e, err, tt.want)
		}
		if string(got) != "keep" {
			t.Errorf("%q: dst changed to %q on error", tt.e, got)
		}
		if _, err := Prepare(tt.e); !errors.Is(err, tt.want) {
			t.Errorf("Prepare(%q): err = %v, want %v", tt.e, err, tt.want)
		}
	}
}

func TestAppendComment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ": \n"},
		{"ping", ": ping\n"},
		{"a\nb", ": a\n: b\n"},
		{"a\r\nb\rc", ": a\n: b\n: c\n"},
		{"a\n\ndata: evil", ": a\n: \n: data: evil\n"},
	}
	for _, tt := range tests {
		if got := string(AppendComment(nil, tt.in)); got != tt.want {
			t.Errorf("AppendComment(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if p := PrepareComment(tt.in); string(p.Bytes()) != tt.want || p.Event() != (Event{}) || p.Len() != len(tt.want) {
			t.Errorf("PrepareComment(%q) = %q, %+v", tt.in, p.Bytes(), p.Event())
		}
		// What a client sees is the same text with LF line breaks, and no event.
		var comments []string
		rd := NewReader(strings.NewReader(string(AppendComment(nil, tt.in)) + "\n"))
		rd.OnComment = func(c string) { comments = append(comments, c) }
		if e, err := rd.Next(); err != io.EOF {
			t.Errorf("comment %q dispatched %q, %v", tt.in, e, err)
		}
		if got, want := strings.Join(comments, "\n"), normalizeLineBreaks(tt.in); got != want {
			t.Errorf("comment %q read back as %q", want, got)
		}
	}
}

// AppendID sets the last event id and dispatches nothing.
func TestAppendID(t *testing.T) {
	for _, id := range []string{"42", " spaced ", ""} {
		wire, err := AppendID([]byte("data: before\n\n"), id)
		if err != nil {
			t.Fatal(err)
		}
		rd := NewReader(nil)
		rd.Reset(strings.NewReader(string(wire)+"data: after\n\n"), "old")
		var got []Event
		for e, err := range rd.All() {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
		if len(got) != 2 || got[0].ID != "old" || got[1] != (Event{ID: id, Type: "message", Data: "after"}) {
			t.Fatalf("id %q: %q read as %+v", id, wire, got)
		}
	}
	for _, bad := range []string{"a\nb", "a\rb", "a\x00b"} {
		if got, err := AppendID([]byte("x"), bad); !errors.Is(err, ErrInvalidID) || string(got) != "x" {
			t.Errorf("id %q: %q, %v", bad, got, err)
		}
	}
}

func TestAppendRetry(t *testing.T) {
	if got := string(AppendRetry(nil, 2*time.Second)); got != "retry: 2000\n\n" {
		t.Fatalf("got %q", got)
	}
	if got := string(AppendRetry(nil, -1)); got != "retry: 0\n\n" {
		t.Fatalf("got %q", got)
	}
	rd := NewReader(strings.NewReader(string(AppendRetry(nil, 250*time.Millisecond))))
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("a retry block dispatched an event: %v", err)
	}
	if d, ok := rd.Retry(); !ok || d != 250*time.Millisecond {
		t.Fatalf("retry read back as %v, %v", d, ok)
	}
}

func TestPreparedEvent(t *testing.T) {
	e := Event{ID: "7", Type: "t", Data: "line1\nline2"}
	p, err := Prepare(e)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := AppendEvent(nil, e)
	if !bytes.Equal(p.Bytes(), want) || p.Len() != len(want) || p.Event() != e {
		t.Fatalf("prepared %q, want %q", p.Bytes(), want)
	}
	var buf bytes.Buffer
	if n, err := p.WriteTo(&buf); err != nil || n != int64(len(want)) || buf.String() != string(want) {
		t.Fatalf("WriteTo: %d, %v, %q", n, err, buf.String())
	}
	if cap(p.Bytes()) < len(p.Bytes()) || cap(p.Bytes()) > 2*len(p.Bytes())+64 {
		t.Fatalf("size hint off: len %d cap %d", len(p.Bytes()), cap(p.Bytes()))
	}
}

func TestAppendEventAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 4096)
	events := []Event{
		{Data: "single line"},
		{ID: "1234", Type: "token", Data: `{"t":"hello"}`, Retry: time.Second},
		{Data: "a\nb\r\nc\rd"},
	}
	for _, e := range events {
		allocs := testing.AllocsPerRun(100, func() {
			var err error
			if buf, err = AppendEvent(buf[:0], e); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%q: %v allocations per event", e, allocs)
		}
	}
}

func normalizeLineBreaks(s string) string {
	return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
}
