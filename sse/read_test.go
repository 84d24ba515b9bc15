package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// chunkReader returns at most n bytes per Read, to split the input at every
// possible place (CR at the end of one read and LF at the start of the next,
// a BOM across reads, and so on).
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(c.n, len(p), len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

type readResult struct {
	Events   []Event
	Comments []string
	LastID   string
	Retry    time.Duration
	RetrySet bool
	Err      error
}

func readAll(r io.Reader, configure func(*Reader)) readResult {
	var res readResult
	rd := NewReader(r)
	rd.OnComment = func(s string) { res.Comments = append(res.Comments, s) }
	if configure != nil {
		configure(rd)
	}
	for {
		e, err := rd.Next()
		if err != nil {
			if err != io.EOF {
				res.Err = err
			}
			break
		}
		res.Events = append(res.Events, e)
	}
	res.LastID = rd.LastEventID()
	res.Retry, res.RetrySet = rd.Retry()
	return res
}

// chunkings returns the input split every way the tests check: whole, and
// in reads of 1, 2 and 3 bytes.
func chunkings(input string) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"whole":  func() io.Reader { return strings.NewReader(input) },
		"1-byte": func() io.Reader { return &chunkReader{data: []byte(input), n: 1} },
		"2-byte": func() io.Reader { return &chunkReader{data: []byte(input), n: 2} },
		"3-byte": func() io.Reader { return &chunkReader{data: []byte(input), n: 3} },
	}
}

func msg(id, data string) Event { return Event{ID: id, Type: "message", Data: data} }

// The cases follow the "Interpreting an event stream" and "dispatch the
// event" sections of the WHATWG HTML standard, rule by rule.
var parseTests = []struct {
	name     string
	in       string
	events   []Event
	comments []string
	lastID   string
	retry    time.Duration // 0 with retrySet false means "never set"
	atEOF    bool          // DispatchAtEOF
}{
	{name: "empty stream", in: ""},
	{name: "one event LF", in: "data: hello\n\n", events: []Event{msg("", "hello")}},
	{name: "one event CRLF", in: "data: hello\r\n\r\n", events: []Event{msg("", "hello")}},
	{name: "one event CR", in: "data: hello\r\r", events: []Event{msg("", "hello")}},
	{name: "mixed line ends", in: "data: a\rdata: b\r\ndata: c\n\r\n", events: []Event{msg("", "a\nb\nc")}},
	{name: "CR then LF is one line end", in: "data: a\r\n\r\ndata: b\r\n\r\n", events: []Event{msg("", "a"), msg("", "b")}},
	{name: "LF CR is two line ends", in: "data: a\n\rdata: b\n\n", events: []Event{msg("", "a"), msg("", "b")}},
	{name: "CR CR dispatches", in: "data: a\r\r\rdata: b\n\n", events: []Event{msg("", "a"), msg("", "b")}},
	{name: "multi-line data joined with LF", in: "data: a\ndata: b\ndata: c\n\n", events: []Event{msg("", "a\nb\nc")}},
	{name: "one leading space stripped", in: "data:  two spaces\n\n", events: []Event{msg("", " two spaces")}},
	{name: "no space after colon", in: "data:tight\n\n", events: []Event{msg("", "tight")}},
	{name: "tab is not stripped", in: "data:\tx\n\n", events: []Event{msg("", "\tx")}},
	{name: "trailing spaces kept", in: "data: x  \n\n", events: []Event{msg("", "x  ")}},
	{name: "colon inside value kept", in: "data: a:b: c\n\n", events: []Event{msg("", "a:b: c")}},
	{name: "field without colon has empty value", in: "data\n\n", events: []Event{msg("", "")}},
	{name: "two data lines without colon", in: "data\ndata\n\n", events: []Event{msg("", "\n")}},
	{name: "empty data line dispatches empty data", in: "data:\n\n", events: []Event{msg("", "")}},
	{name: "only trailing LF removed", in: "data: a\ndata:\n\n", events: []Event{msg("", "a\n")}},
	{name: "event type", in: "event: add\ndata: 1\n\n", events: []Event{{Type: "add", Data: "1"}}},
	{name: "type resets after dispatch", in: "event: add\ndata: 1\n\ndata: 2\n\n", events: []Event{{Type: "add", Data: "1"}, msg("", "2")}},
	{name: "empty type is message", in: "event:\ndata: 1\n\n", events: []Event{msg("", "1")}},
	{name: "type resets even without data", in: "event: add\n\ndata: 1\n\n", events: []Event{msg("", "1")}},
	{name: "last type wins", in: "event: a\nevent: b\ndata: 1\n\n", events: []Event{{Type: "b", Data: "1"}}},
	{name: "type of a block without data is dropped", in: "event: x\n\n", events: nil},
	{name: "id persists across events", in: "id: 1\ndata: a\n\ndata: b\n\n", events: []Event{msg("1", "a"), msg("1", "b")}, lastID: "1"},
	{name: "empty id resets", in: "id: 1\ndata: a\n\nid\ndata: b\n\n", events: []Event{msg("1", "a"), msg("", "b")}, lastID: ""},
	{name: "empty id with colon resets", in: "id: 1\ndata: a\n\nid:\ndata: b\n\n", events: []Event{msg("1", "a"), msg("", "b")}},
	{name: "id with NUL ignored", in: "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", events: []Event{msg("1", "a"), msg("1", "b")}, lastID: "1"},
	{name: "id leading space stripped once", in: "id:  x\ndata: a\n\n", events: []Event{msg(" x", "a")}, lastID: " x"},
	{name: "id without data sets last id", in: "id: 7\n\n", lastID: "7"},
	{name: "id in undispatched block at EOF not applied", in: "id: 1\ndata: a\n\nid: 2\ndata: b\n", events: []Event{msg("1", "a")}, lastID: "1"},
	{name: "id applies to its own event", in: "data: a\nid: 5\n\n", events: []Event{msg("5", "a")}, lastID: "5"},
	{name: "retry digits", in: "retry: 3000\n\n", retry: 3000 * time.Millisecond},
	{name: "retry leading zeros", in: "retry: 03000\n\n", retry: 3000 * time.Millisecond},
	{name: "retry zero", in: "retry: 0\n\n", retry: 0},
	{name: "retry with sign ignored", in: "retry: +100\n\n"},
	{name: "retry with minus ignored", in: "retry: -100\n\n"},
	{name: "retry with dot ignored", in: "retry: 1.5\n\n"},
	{name: "retry with trailing space ignored", in: "retry: 100 \n\n"},
	{name: "retry empty ignored", in: "retry:\n\n"},
	{name: "retry with two spaces ignored", in: "retry:  100\n\n"},
	{name: "retry non-ASCII digits ignored", in: "retry: １\n\n"},
	{name: "retry on event", in: "retry: 5\ndata: x\n\n", events: []Event{{Type: "message", Data: "x", Retry: 5 * time.Millisecond}}, retry: 5 * time.Millisecond},
	{name: "retry huge saturates", in: "retry: 99999999999999999999999999\n\n", retry: time.Duration(maxRetryMillis) * time.Millisecond},
	{name: "comment", in: ": hello\ndata: x\n\n", events: []Event{msg("", "x")}, comments: []string{"hello"}},
	{name: "comment without space", in: ":hi\n\n", comments: []string{"hi"}},
	{name: "empty comment", in: ":\n\n", comments: []string{""}},
	{name: "comment does not dispatch", in: ": a\n: b\n", comments: []string{"a", "b"}},
	{name: "comment between data lines", in: "data: a\n: c\ndata: b\n\n", events: []Event{msg("", "a\nb")}, comments: []string{"c"}},
	{name: "unknown field ignored", in: "foo: bar\ndata: x\n\n", events: []Event{msg("", "x")}},
	{name: "field names are case sensitive", in: "Data: x\nDATA: y\n\n"},
	{name: "field with space before colon is unknown", in: "data : x\n\n"},
	{name: "blank lines alone dispatch nothing", in: "\n\n\r\n\r\r"},
	{name: "BOM stripped", in: "\xEF\xBB\xBFdata: x\n\n", events: []Event{msg("", "x")}},
	{name: "only one BOM stripped", in: "\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n", events: []Event{msg("", "y")}},
	{name: "BOM later is data", in: "data: \xEF\xBB\xBFx\n\n", events: []Event{msg("", "\uFEFFx")}},
	{name: "partial BOM is not stripped", in: "\xEF\xBB", events: nil},
	{name: "unterminated event discarded", in: "data: a\n\ndata: b\n", events: []Event{msg("", "a")}},
	{name: "unterminated line discarded", in: "data: a\n\ndata: b", events: []Event{msg("", "a")}},
	{name: "unterminated event dispatched at EOF", in: "data: a\n\ndata: b\n", events: []Event{msg("", "a"), msg("", "b")}, atEOF: true},
	{name: "unterminated line dispatched at EOF", in: "id: 9\ndata: b", events: []Event{msg("9", "b")}, lastID: "9", atEOF: true},
	{name: "trailing CR at EOF ends the line", in: "data: a\r\r", events: []Event{msg("", "a")}},
	{name: "invalid UTF-8 decodes to U+FFFD", in: "data: a\xFFb\n\n", events: []Event{msg("", "a\uFFFDb")}},
	{name: "truncated sequence is one U+FFFD", in: "data: \xE2\x82A\n\n", events: []Event{msg("", "\uFFFDA")}},
	{name: "surrogate encodings are invalid", in: "data: \xED\xA0\x80\n\n", events: []Event{msg("", "\uFFFD\uFFFD\uFFFD")}},
	{name: "overlong encodings are invalid", in: "data: \xC0\xAF\n\n", events: []Event{msg("", "\uFFFD\uFFFD")}},
	{name: "valid multibyte kept", in: "data: héllo €𝄞\n\n", events: []Event{msg("", "héllo €𝄞")}},
	{name: "NUL in data kept", in: "data: a\x00b\n\n", events: []Event{msg("", "a\x00b")}},
	{name: "LLM token stream", in: "event: token\ndata: {\"t\":\"Hel\"}\n\nevent: token\ndata: {\"t\":\"lo\"}\n\n",
		events: []Event{{Type: "token", Data: `{"t":"Hel"}`}, {Type: "token", Data: `{"t":"lo"}`}}},
}

func TestReaderSpec(t *testing.T) {
	for _, tt := range parseTests {
		for chunking, open := range chunkings(tt.in) {
			t.Run(tt.name+"/"+chunking, func(t *testing.T) {
				got := readAll(open(), func(r *Reader) { r.DispatchAtEOF = tt.atEOF })
				if got.Err != nil {
					t.Fatalf("error: %v", got.Err)
				}
				if !reflect.DeepEqual(got.Events, tt.events) {
					t.Errorf("events:\n got %q\nwant %q", got.Events, tt.events)
				}
				if !reflect.DeepEqual(got.Comments, tt.comments) {
					t.Errorf("comments: got %q, want %q", got.Comments, tt.comments)
				}
				if got.LastID != tt.lastID && !(tt.lastID == "" && len(tt.events) > 0 && got.LastID == tt.events[len(tt.events)-1].ID) {
					t.Errorf("last event id: got %q, want %q", got.LastID, tt.lastID)
				}
				wantSet := tt.retry != 0 || strings.Contains(tt.name, "retry zero")
				if got.RetrySet != wantSet || got.Retry != tt.retry {
					t.Errorf("retry: got %v (set %v), want %v (set %v)", got.Retry, got.RetrySet, tt.retry, wantSet)
				}
			})
		}
	}
}

func TestReaderEveryChunking(t *testing.T) {
	// Split a stream using every line ending at every byte boundary and
	// check the events never change.
	in := "\xEF\xBB\xBFid: 1\r\nevent: a\rdata: x\n\r\n: c\r\ndata: y\r\rdata: z\r\n\n"
	want := []Event{{ID: "1", Type: "a", Data: "x"}, msg("1", "y"), msg("1", "z")}
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j++ {
			r := io.MultiReader(strings.NewReader(in[:i]), strings.NewReader(in[i:j]), strings.NewReader(in[j:]))
			got := readAll(r, nil)
			if got.Err != nil || !reflect.DeepEqual(got.Events, want) {
				t.Fatalf("split at %d,%d: got %q (%v), want %q", i, j, got.Events, got.Err, want)
			}
		}
	}
}

func TestReaderDoesNotWaitAfterCR(t *testing.T) {
	// A blank line ending in CR must dispatch at once: the reader cannot wait
	// for the next byte to learn whether an LF follows.
	pr, pw := io.Pipe()
	rd := NewReader(pr)
	go func() { _, _ = pw.Write([]byte("data: a\r\r")) }()
	e, err := rd.Next()
	if err != nil || e.Data != "a" {
		t.Fatalf("got %q, %v", e, err)
	}
	go func() {
		_, _ = pw.Write([]byte("\ndata: b\r\n\r\n"))
		pw.Close()
	}()
	e, err = rd.Next()
	if err != nil || e.Data != "b" {
		t.Fatalf("after the split CRLF: got %q, %v", e, err)
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestReaderMaxEventSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		ok   int // events before the error
	}{
		{"one long line", "data: " + strings.Repeat("x", 100) + "\n\n", 64, 0},
		{"many data lines", strings.Repeat("data: 0123456789\n", 10) + "\n", 64, 0},
		{"long comment", ": " + strings.Repeat("x", 100) + "\n", 64, 0},
		{"unterminated long line", "data: small\n\ndata: " + strings.Repeat("x", 100), 64, 1},
		{"at the limit", "data: " + strings.Repeat("x", 57) + "\n\n", 64, 1},
	}
	for _, tt := range tests {
		for chunking, open := range chunkings(tt.in) {
			t.Run(tt.name+"/"+chunking, func(t *testing.T) {
				got := readAll(open(), func(r *Reader) { r.MaxEventSize = tt.max })
				if len(got.Events) != tt.ok {
					t.Fatalf("got %d events, want %d", len(got.Events), tt.ok)
				}
				wantErr := tt.name != "at the limit"
				if wantErr != errors.Is(got.Err, ErrEventTooLarge) {
					t.Fatalf("err = %v, want ErrEventTooLarge: %v", got.Err, wantErr)
				}
			})
		}
	}
}

func TestReaderErrorIsSticky(t *testing.T) {
	rd := NewReader(strings.NewReader("data: " + strings.Repeat("x", 100) + "\n\ndata: ok\n\n"))
	rd.MaxEventSize = 10
	for range 3 {
		if _, err := rd.Next(); !errors.Is(err, ErrEventTooLarge) {
			t.Fatalf("got %v, want ErrEventTooLarge", err)
		}
	}
}

func TestReaderBufferStaysBounded(t *testing.T) {
	// An endless line without a line end must fail at the bound, not grow.
	rd := NewReader(iotest.OneByteReader(io.LimitReader(neverEnding('x'), 1<<20)))
	rd.MaxEventSize = 4096
	if _, err := rd.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("got %v, want ErrEventTooLarge", err)
	}
	if cap(rd.buf) > 2*initialReadBufferSize {
		t.Fatalf("buffer grew to %d bytes for a 4096-byte bound", cap(rd.buf))
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func TestReaderHugeDataLine(t *testing.T) {
	for _, size := range []int{10 << 20, 12<<20 + 7} {
		payload := bytes.Repeat([]byte("abcdefghij"), size/10+1)[:size]
		in := append(append([]byte("id: big\ndata: "), payload...), "\ndata: tail\n\n"...)
		got := readAll(&chunkReader{data: in, n: 64 << 10}, nil)
		if got.Err != nil || len(got.Events) != 1 {
			t.Fatalf("size %d: %d events, err %v", size, len(got.Events), got.Err)
		}
		if want := string(payload) + "\ntail"; got.Events[0].Data != want {
			t.Fatalf("size %d: data differs (len %d, want %d)", size, len(got.Events[0].Data), len(want))
		}
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: partial\n"), iotest.ErrReader(boom))
	got := readAll(r, nil)
	if !errors.Is(got.Err, boom) {
		t.Fatalf("err = %v, want %v", got.Err, boom)
	}
	if want := []Event{msg("", "a")}; !reflect.DeepEqual(got.Events, want) {
		t.Fatalf("events %q, want %q (the partial event is discarded)", got.Events, want)
	}
}

func TestReaderReset(t *testing.T) {
	rd := NewReader(strings.NewReader("id: 1\ndata: a\n\ndata: partial\n"))
	rd.MaxEventSize = 1 << 10
	for range rd.All() {
	}
	rd.Reset(strings.NewReader("data: b\n\n"), rd.LastEventID())
	e, err := rd.Next()
	if err != nil || e != msg("1", "b") {
		t.Fatalf("after Reset: %q, %v (the partial event of the old stream must not leak)", e, err)
	}
	if rd.MaxEventSize != 1<<10 {
		t.Fatal("Reset lost the settings")
	}
	if _, set := rd.Retry(); set {
		t.Fatal("Reset kept the old stream's retry")
	}
}

func TestReadIterator(t *testing.T) {
	var got []string
	for e, err := range Read(strings.NewReader("data: 1\n\ndata: 2\n\ndata: 3\n\n")) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Data)
		if len(got) == 2 {
			break
		}
	}
	if fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("got %v", got)
	}
	var errs int
	for _, err := range Read(io.MultiReader(strings.NewReader("data: 1\n\n"), iotest.ErrReader(io.ErrUnexpectedEOF))) {
		if err != nil {
			errs++
		}
	}
	if errs != 1 {
		t.Fatalf("want exactly one error element, got %d", errs)
	}
}

func TestDecodeUTF8(t *testing.T) {
	// Expected outputs follow the WHATWG UTF-8 decoder: one U+FFFD per
	// maximal subpart of an invalid sequence.
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"\xFF", "\uFFFD"},
		{"\xE2\x82", "\uFFFD"},
		{"\xE2\x82\xAC", "€"},
		{"\xF0\x9F\x98", "\uFFFD"},
		{"\xF0\x9F\x98A", "\uFFFDA"},
		{"\xE0\x80\x80", "\uFFFD\uFFFD\uFFFD"},
		{"\xF4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"\xF4\x8F\xBF\xBF", "\U0010FFFF"},
		{"\x80\x80", "\uFFFD\uFFFD"},
		{"a\xC3", "a\uFFFD"},
		{"\xC3\xA9\xC3", "é\uFFFD"},
	}
	for _, tt := range tests {
		if got := decodeUTF8([]byte(tt.in)); got != tt.want {
			t.Errorf("decodeUTF8(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIndexLF(t *testing.T) {
	for n := range 150 {
		b := bytes.Repeat([]byte{'x'}, n)
		if got := indexLF(b); got != -1 {
			t.Fatalf("no LF in %d bytes: got %d", n, got)
		}
		for at := range n {
			b := bytes.Repeat([]byte{0x0B}, n) // a byte one above LF, to trip borrows
			b[at] = '\n'
			if at+1 < n {
				b[at+1] = '\n'
			}
			if got := indexLF(b); got != at {
				t.Fatalf("LF at %d of %d: got %d", at, n, got)
			}
		}
	}
}
