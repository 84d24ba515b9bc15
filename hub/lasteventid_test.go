package hub

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestValidateLastEventID: the cursor rules the handler applies, and that
// other protocols on the hub reuse.
func TestValidateLastEventID(t *testing.T) {
	for _, tt := range []struct {
		name string
		id   string
		max  int
		ok   bool
	}{
		{"empty", "", 8, true},
		{"at the limit", "12345678", 8, true},
		{"over the limit", "123456789", 8, false},
		{"CR", "a\rb", 8, false},
		{"LF", "a\nb", 8, false},
		{"NUL", "a\x00b", 8, false},
		{"unicode", "é-1", 8, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateLastEventID(tt.id, tt.max)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateLastEventID(%q, %d) = %v, want ok=%v", tt.id, tt.max, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidLastEventID) {
				t.Fatalf("error %v does not wrap ErrInvalidLastEventID", err)
			}
		})
	}
}

// TestHandlerRefusesInvalidLastEventID: the handler answers 400 to the
// cursors ValidateLastEventID refuses, from the header or the parameter.
func TestHandlerRefusesInvalidLastEventID(t *testing.T) {
	e := newEnv(t, Config{MaxLastEventIDLen: 16}, false)
	for _, tt := range []struct {
		name string
		hdr  http.Header
		q    string
	}{
		{"long header", http.Header{"Last-Event-Id": {strings.Repeat("x", 17)}}, ""},
		{"long parameter", nil, "&lastEventID=" + strings.Repeat("x", 17)},
		{"LF parameter", nil, "&lastEventID=" + url.QueryEscape("a\nb")},
		{"NUL parameter", nil, "&lastEventID=" + url.QueryEscape("a\x00b")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := e.get("/events?topic=a"+tt.q, tt.hdr)
			if c.resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", c.resp.StatusCode)
			}
		})
	}
}
