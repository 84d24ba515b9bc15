package mercure

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// The engine's private channels (hub.ReservedTopicPrefix) are the
// application's: a Mercure publisher cannot publish to one, even with a
// grant for everything, and a Mercure subscriber naming one (exactly, or
// with a pattern) never receives what the application sends on it. The
// same holds for the signals between instances (store.SignalPrefix), so
// that nobody can forge a relay's cancel request or lease.
func TestPrivateChannelsUnreachable(t *testing.T) {
	for _, channel := range []string{hub.ReservedTopicPrefix + "session:abc", store.SignalPrefix + "relay-cancel:abc"} {
		t.Run(channel, func(t *testing.T) {
			e := newEnv(t, nil)
			resp := e.publish(classicToken(e.t, e.pubKey, []string{"*"}, nil), form("topic", channel, "data", "forged"))
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "private channel") {
				t.Fatalf("publish to a private channel: %d %s", resp.StatusCode, body)
			}
			sub := classicToken(t, e.subKey, nil, []string{"*"})
			c := e.subscribe("topic="+url.QueryEscape(channel)+"&topic=fence&topic=*", bearer(sub))
			if _, err := e.eng.Publish(context.Background(), hub.Message{Topics: []string{channel}, Event: sse.Event{Data: "for the application only"}}); err != nil {
				t.Fatal(err)
			}
			e.fence(c, "fence")
		})
	}
}
