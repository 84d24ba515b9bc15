package mercure

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// reservedCases are topics around the reserved namespace's edges.
var reservedCases = []struct {
	topic    string
	reserved bool
}{
	{"bench", false},
	{"https://example.com/books/1", false},
	{"urn:example:.well-known/mercure", false},
	{"/.well-known/mercurex", false},
	{"/.WELL-KNOWN/MERCURE", false},
	{"", true},
	{"?x", true},
	{"#x", true},
	{" ?x", true},
	{"https:", true},
	{"HTTPS:?x", true},
	{"https:#f", true},
	{"mercure", true},
	{"./mercure", true},
	{"mercure/x", true},
	{"/.well-known/mercure", true},
	{"/.well-known/mercure/subscriptions/x", true},
	{"https://other.example/.well-known/mercure", true},
	{"/.well%2Dknown/mercure/x", true},
	{"/.well-known/%6Dercure", true},
	{"/a/../.well-known/mercure/x", true},
	{"\\.well-known\\mercure", true},
	{"//host/.well-known/mercure?q", true},
	{"http:", false},
	{"https:x", false},
	{"https:/x", false},
	{"https://example.com/.well-known/mercurey", false},
	{"https:mercure", true},
	{"https:./mercure", true},
	{"https:/.well-known/mercure", true},
	{"https:\\host\\.well-known\\mercure", false},
	{"https:\\.well-known\\mercure", true},
	{"x?mercure", false},
	{".", false},
}

func TestReservedTopic(t *testing.T) {
	for _, tt := range reservedCases {
		if got := parseReserved(tt.topic); got != tt.reserved {
			t.Errorf("parseReserved(%q) = %v, want %v", tt.topic, got, tt.reserved)
		}
		if got := isReservedTopic(tt.topic); got != tt.reserved {
			t.Errorf("isReservedTopic(%q) = %v, want %v", tt.topic, got, tt.reserved)
		}
	}
}

// TestSurelyUnreservedAgreesWithParser: the fast path never calls a topic
// unreserved that the parser puts in the namespace, over random topics built
// from the pieces that matter.
func TestSurelyUnreservedAgreesWithParser(t *testing.T) {
	pieces := []string{
		"/", "\\", ".", "..", "?", "#", "%", "%2e", "%2E", "%6d", "%6D", "%2D", ":", "@", " ", "\t",
		"https:", "HTTPS:", "https://", "https:/", "https:\\", "http:", "file:", "urn:", "//", "h", "x", "m", "e", "mercure", "mer", "cure",
		".well-known", "well-known", "-", "é", "{", "}", "*",
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var b strings.Builder
	fast, reserved := 0, 0
	for range 30_000 {
		b.Reset()
		for range rng.IntN(8) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		topic := b.String()
		r := parseReserved(topic)
		if r {
			reserved++
		}
		if surelyUnreserved(topic) {
			fast++
			if r {
				t.Fatalf("surelyUnreserved(%q), but the parser puts it in the reserved namespace", topic)
			}
		}
	}
	if fast < 5000 || reserved < 500 {
		t.Fatalf("weak sample: %d topics on the fast path, %d reserved", fast, reserved)
	}
}

func FuzzSurelyUnreserved(f *testing.F) {
	for _, tt := range reservedCases {
		f.Add(tt.topic)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		if surelyUnreserved(topic) && parseReserved(topic) {
			t.Fatalf("surelyUnreserved(%q), but the parser puts it in the reserved namespace", topic)
		}
	})
}

// TestParseFormMatchesNetHTTP: the publish form parser gives the values and
// errors of http.Request.ParseForm.
func TestParseFormMatchesNetHTTP(t *testing.T) {
	bodies := []string{
		"", "topic=a&data=b", "topic=a&topic=b&data=x+y%20z&private", "topic=a&data=%zz", "topic=a;data=b",
		"a=1&&=2&topic=%E2%82%AC", "%74opic=t&data=%", "topic=a&data=" + strings.Repeat("é", 3000),
		strings.Repeat("topic=a&", 10_000), "topic=a&data=" + strings.Repeat("x", 1<<20),
	}
	types := []string{
		"application/x-www-form-urlencoded", "Application/X-WWW-Form-URLEncoded", "application/x-www-form-urlencoded; charset=UTF-8",
		"application/x-www-form-urlencoded;charset=utf-8", "application/x-www-form-urlencoded; charset", "text/plain", "",
	}
	newReq := func(body, ct, query string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, HubPath+query, strings.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<20)
		return r
	}
	for _, body := range bodies {
		for _, ct := range types {
			for _, query := range []string{"", "?x=%zz"} {
				fast, slow := newReq(body, ct, query), newReq(body, ct, query)
				ferr, serr := parseForm(fast), slow.ParseForm()
				if fmt.Sprint(ferr) != fmt.Sprint(serr) {
					t.Errorf("body %.40q, type %q, query %q: error %v, want %v", body, ct, query, ferr, serr)
				}
				if !reflect.DeepEqual(fast.PostForm, slow.PostForm) {
					t.Errorf("body %.40q, type %q, query %q: PostForm %v, want %v", body, ct, query, fast.PostForm, slow.PostForm)
				}
				if fast.FormValue("topic") != slow.FormValue("topic") {
					t.Errorf("body %.40q, type %q, query %q: FormValue differs", body, ct, query)
				}
			}
		}
	}
}
