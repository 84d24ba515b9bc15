package hub

import (
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// The names the hub reserves. A protocol on the hub refuses them in what
// its clients send (see mercure), so that nothing a client sends can pass
// for the hub's own signals or reach a private channel.
const (
	// ReservedTopicPrefix starts the topics of private channels
	// ("sluice:…"): the application's own topics for one session, one
	// stream, one connection (packages session and stream use them).
	// Publish, Notify, Complete and Serve take them from the application;
	// only a subscription that names one exactly receives its events
	// (never a pattern), whatever its Authorize says; and the hub's own
	// handler (ServeHTTP) refuses them in a query. A channel's name is its
	// capability: build it from an unguessable id. It is the store's
	// store.ChannelPrefix: the stores keep these channels apart from the
	// log's retention (store.Keeper), except the signals between instances
	// (store.SignalPrefix), which are reserved the same way but not kept.
	ReservedTopicPrefix = store.ChannelPrefix
	// ReservedTypePrefix starts the event types of the hub's signals
	// ("sluice-…"): Publish and Notify refuse them.
	ReservedTypePrefix = "sluice-"
	// ResetEventType is the type of the event a subscriber gets instead of
	// a replay when the store cannot serve its Last-Event-ID (unknown, or
	// expired from retention): its data is
	// {"head":"<id>","reason":"expired"|"unknown"}, its id is that head,
	// and the response carries the header ResetHeader with the reason.
	// Live events follow. See sse.ResetEvent. The head is the hub's
	// position (Stats.Position), never a publisher's custom id; and a
	// custom id naming an event the subscriber may not see is "unknown",
	// as an id never issued (with a store.Positioner).
	ResetEventType = sse.ResetEventType
	// ResetHeader is the response header set, to "expired" or "unknown",
	// when a subscriber gets a reset event.
	ResetHeader = sse.ResetHeader
	// GapEventType is the type of the marker event a subscriber under
	// PolicyDrop receives where events were dropped. Its data is JSON
	// {"dropped":N} and it has no id, so the client's cursor is unchanged.
	GapEventType = ReservedTypePrefix + "gap"
)

// typeEnd is the type of the completion a channel gets from Complete. It
// is never sent to a client: a response that reaches it ends.
const typeEnd = ReservedTypePrefix + "end"
