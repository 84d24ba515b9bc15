package mercure

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// TestParseFormMatchesNetHTTP: the publish form parser gives the update's
// fields and the errors of http.Request.ParseForm.
func TestParseFormMatchesNetHTTP(t *testing.T) {
	bodies := []string{
		"", "topic=a&data=b", "topic=a&topic=b&data=x+y%20z&private", "topic=a&data=%zz", "topic=a;data=b",
		"a=1&&=2&topic=%E2%82%AC", "%74opic=t&data=%", "topic=a&data=" + strings.Repeat("é", 3000),
		strings.Repeat("topic=a&", 10_000), "topic=a&data=" + strings.Repeat("x", 1<<20),
		// the fields parseFormFields reads itself, and the bodies it leaves to url.ParseQuery
		"topic=a&id=&id=x&type=t&type=u&data=1&data=2&retry=5&retry=x&private=", "data=a&topic=b&topic=c&private=no",
		"topic=a&=x", "topic=a&other=1", "topic=a&da%74a=x", "topic=a&data=x;y", "topic=a&data=%4", "top+ic=a",
		"topic=&data=&&&", "topic", "topic=a%26b&data=%3D%3D", "&topic=a&", "topic=a&data=é%C3%A9+",
		strings.Repeat("topic=a&", maxFastFields-1) + "data=x", strings.Repeat("topic=a&", maxFastFields) + "data=x",
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
				f, ferr := parseForm(fast)
				serr := slow.ParseForm()
				if fmt.Sprint(ferr) != fmt.Sprint(serr) {
					t.Errorf("body %.40q, type %q, query %q: error %v, want %v", body, ct, query, ferr, serr)
				}
				if want := formOf(slow.PostForm); !reflect.DeepEqual(f, want) {
					t.Errorf("body %.40q, type %q, query %q: form %+v, want %+v", body, ct, query, f, want)
				}
			}
		}
	}
}

// formPieces are the pieces random form bodies are built from.
var formPieces = []string{
	"topic", "id", "type", "data", "retry", "private", "other", "=", "&", ";", "%", "%2", "%41", "%zz", "+", "a", "é", "%C3%A9", "%26", "%3D", "",
}

// TestParseFormFieldsAgreesWithParseQuery: over random bodies, what
// parseFormFields reads is what url.ParseQuery reads, without error.
func TestParseFormFieldsAgreesWithParseQuery(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 15))
	var b strings.Builder
	fast := 0
	for range 50_000 {
		b.Reset()
		for range rng.IntN(12) {
			b.WriteString(formPieces[rng.IntN(len(formPieces))])
		}
		body := b.String()
		f, ok := parseFormFields(body)
		if !ok {
			continue
		}
		fast++
		v, err := url.ParseQuery(body)
		if err != nil {
			t.Fatalf("parseFormFields(%q) read it, url.ParseQuery refuses it: %v", body, err)
		}
		if want := formOf(v); !reflect.DeepEqual(f, want) {
			t.Fatalf("parseFormFields(%q) = %+v, url.ParseQuery gives %+v", body, f, want)
		}
	}
	if fast < 5000 {
		t.Fatalf("weak sample: %d bodies on the fast path", fast)
	}
}

func FuzzParseFormFields(f *testing.F) {
	for _, body := range []string{"topic=a&data=b", "topic=a&id=&id=x&private", "data=%zz", "topic=a;b", "&&topic=%C3%A9"} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, ok := parseFormFields(body)
		if !ok {
			return
		}
		v, err := url.ParseQuery(body)
		if err != nil {
			t.Fatalf("parseFormFields read %q, url.ParseQuery refuses it: %v", body, err)
		}
		if want := formOf(v); !reflect.DeepEqual(got, want) {
			t.Fatalf("parseFormFields(%q) = %+v, want %+v", body, got, want)
		}
	})
}
