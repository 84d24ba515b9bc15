package stream

import (
	"encoding/base64"
	"testing"
)

// FuzzParseID: an id from a client's path either is refused or splits into
// a 32-hex-digit key and the cursor it encodes, and the id of any key and
// cursor parses back to them.
func FuzzParseID(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef", "")
	f.Add("0123456789abcdef0123456789abcdef", "#k3j9x0a2-1z")
	f.Add("nope", "x")
	f.Fuzz(func(t *testing.T, key, cursor string) {
		id := key + base64.RawURLEncoding.EncodeToString([]byte(cursor))
		k, c, ok := parseID(id)
		if !ok {
			return
		}
		if len(k) != keyLen {
			t.Fatalf("key %q", k)
		}
		for i := 0; i < len(k); i++ {
			if ch := k[i]; (ch < '0' || ch > '9') && (ch < 'a' || ch > 'f') {
				t.Fatalf("key %q", k)
			}
		}
		if k == key && c != cursor {
			t.Fatalf("parseID(%q) = %q, %q; want cursor %q", id, k, c, cursor)
		}
		if _, _, ok := parseID(k + base64.RawURLEncoding.EncodeToString([]byte(c))); !ok {
			t.Fatalf("the id of %q, %q does not parse", k, c)
		}
	})
}
