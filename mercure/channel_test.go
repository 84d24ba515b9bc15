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
)

// The engine's private channels (hub.ReservedTopicPrefix) are the
// application's: a Mercure publisher cannot publish to one, even with a
// grant for everything, and a Mercure subscriber naming one (exactly, or
// with a pattern) never receives what the application sends on it.
func TestPrivateChannelsUnreachable(t *testing.T) {
	e := newEnv(t, nil)
	channel := hub.ReservedTopicPrefix + "session:abc"
	resp := e.publish(classicToken(e.t, e.pubKey, []string{"*"}, nil), form("topic", channel, "data", "forged"))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "private channel") {
		t.Fatalf("publish to a private channel: %d %s", resp.StatusCode, body)
	}
	sub := classicToken(t, e.subKey, nil, []string{"*"})
	c := e.subscribe("topic="+url.QueryEscape(channel)+"&topic=fence&topic=*", bearer(sub))
	if _, err := e.eng.Publish(context.Background(), hub.Message{Topics: []string{channel}, Event: sse.Event{Data: "for the session only"}}); err != nil {
		t.Fatal(err)
	}
	e.fence(c, "fence")
}
