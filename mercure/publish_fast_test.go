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

// reservedCases are topics around the reserved namespace's edges, with
// whether they are reserved under the default base (http://mercure.invalid)
// and under an https resource ending in the hub path.
var reservedCases = []struct {
	topic       string
	http, https bool
}{
	{"bench", false, false},
	{"https://example.com/books/1", false, false},
	{"urn:example:.well-known/mercure", false, false},
	{"/.well-known/mercurex", false, false},
	{"/.WELL-KNOWN/MERCURE", true, true},
	{"", false, true},
	{"?x", false, true},
	{"#x", false, true},
	{" ?x", false, true},
	{"https:", false, true},
	{"HTTPS:?x", false, true},
	{"https:#f", false, true},
	{"http:", false, false},
	{"HTTP:?x", false, false},
	{"mercure", false, true},
	{"./mercure", false, true},
	{"mercure/x", false, true},
	{"/.well-known/mercure", true, true},
	{"/.well-known/mercure/subscriptions/x", true, true},
	{"https://other.example/.well-known/mercure", true, true},
	{"/.well%2Dknown/mercure/x", true, true},
	{"/.well-known/%6Dercure", true, true},
	{"/a/../.well-known/mercure/x", true, true},
	{"\\.well-known\\mercure", true, true},
	{"//host/.well-known/mercure?q", true, true},
	{"https:x", false, false},
	{"https:/x", false, false},
	{"https://example.com/.well-known/mercurey", false, false},
	{"https:/.well-known/mercure", true, true},
	{"http:/.well-known/mercure/subscriptions/x", true, true},
	{"http:.well-known/mercure/subscriptions/x", true, false},
	{"HTTP:/.well-known/mercure/subscriptions/x", true, true},
	{"http:\\.well-known\\mercure\\subscriptions\\x", true, true},
	{"foo?/.well-known/mercure/subscriptions/a/b", true, true},
	{"x#/.well-known/mercure", true, true},
	{"x?mercure", false, false},
	{".", false, false},
}

// testSelectors returns the selector cache of a hub whose base is base.
func testSelectors(t testing.TB, base string) *selectorCache {
	t.Helper()
	c, err := newSelectorCache(base, DefaultSelectorCacheSize, selectorLimits{width: DefaultMaxSelectorCost})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	httpBase  = "http://mercure.invalid"
	httpsBase = "https://hub.example" + HubPath
)

func TestReservedTopic(t *testing.T) {
	for _, base := range []string{httpBase, httpsBase} {
		c := testSelectors(t, base)
		for _, tt := range reservedCases {
			want := tt.http
			if base == httpsBase {
				want = tt.https
			}
			if got := c.parseReserved(tt.topic); got != want {
				t.Errorf("base %s: parseReserved(%q) = %v, want %v", base, tt.topic, got, want)
			}
			if got := c.reservedTopic(tt.topic); got != want {
				t.Errorf("base %s: reservedTopic(%q) = %v, want %v", base, tt.topic, got, want)
			}
		}
	}
}

// reservedPieces are the pieces random topics are built from.
var reservedPieces = []string{
	"/", "\\", ".", "..", "?", "#", "%", "%2e", "%2E", "%6d", "%6D", "%2D", ":", "@", " ", "\t",
	"https:", "HTTPS:", "https://", "https:/", "https:\\", "http:", "HTTP:", "http:/", "http:\\", "file:", "urn:", "//", "h", "x", "m", "e",
	"mercure", "MERCURE", "mer", "cure", ".well-known", "well-known", "/.well-known", "/.well-known/mercure", "/mercure", "-", "é", "{", "}", "*", "subscriptions",
}

// TestSurelyUnreservedAgreesWithParser: the fast path never calls a topic
// unreserved that the parser puts in the namespace, over random topics built
// from the pieces that matter.
func TestSurelyUnreservedAgreesWithParser(t *testing.T) {
	for _, base := range []string{httpBase, httpsBase} {
		c := testSelectors(t, base)
		rng := rand.New(rand.NewPCG(7, 7))
		var b strings.Builder
		fast, reserved := 0, 0
		for range 30_000 {
			b.Reset()
			for range rng.IntN(8) {
				b.WriteString(reservedPieces[rng.IntN(len(reservedPieces))])
			}
			topic := b.String()
			r := c.parseReserved(topic)
			if r {
				reserved++
			}
			if c.surelyUnreserved(topic) {
				fast++
				if r {
					t.Fatalf("base %s: surelyUnreserved(%q), but the parser puts it in the reserved namespace", base, topic)
				}
			}
		}
		if fast < 5000 || reserved < 500 {
			t.Fatalf("base %s: weak sample: %d topics on the fast path, %d reserved", base, fast, reserved)
		}
	}
}

func FuzzSurelyUnreserved(f *testing.F) {
	for _, tt := range reservedCases {
		f.Add(tt.topic)
	}
	c := testSelectors(f, httpBase)
	f.Fuzz(func(t *testing.T, topic string) {
		if c.surelyUnreserved(topic) && c.parseReserved(topic) {
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
