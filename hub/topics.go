package hub

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sluicehq/sluice/store"
)

// Subscription is what one subscriber asks for and may see, and how its
// stream behaves: the handler that calls Hub.Serve builds it from the
// request, so it is where authentication, topic patterns, per-event
// authorization and per-subscriber callbacks plug in.
//
// An event reaches the subscriber when one of its topics is in Topics or
// Match accepts its topics, and then Authorize (or, without Authorize, the
// event not being private) allows it. The same decision filters the replay,
// so replay never leaks an event the live stream would not deliver. An
// event with several matching topics is delivered once.
type Subscription struct {
	// Topics are matched exactly, through a map: the cost of an event does
	// not grow with the number of subscribers on other topics. Duplicates
	// are ignored. They may include private channels (ReservedTopicPrefix),
	// whose events reach only the subscriptions naming them here.
	Topics []string

	// Match, when set, is asked for each event whose topics are not in
	// Topics: it reports whether the subscription's patterns (URI
	// templates, URL patterns, wildcards) match one of them. It runs off
	// the hub's dispatch loop, on a goroutine of the subscription's group
	// (the subscriptions with the same MatchKey), once per event for the
	// whole group, and on the subscriber's goroutine during replay: it must
	// be safe for concurrent use, and a slow Match delays its own group
	// only, which is disconnected once it is Config.QueueEvents behind.
	// Private events are offered to Match only when a member of the group
	// may see them (see Authorize), and events on private channels never
	// are.
	Match func(topics []string) bool
	// MatchKey, when not empty, tells the hub that every subscription with
	// the same key has the same Match: they form one group, and Match is
	// called once per event for all of them (for example, the pattern set
	// in canonical form). Without it a subscription is a group of its own.
	MatchKey string

	// Authorize, when set, decides for every matching event (public or
	// private) whether this subscriber may receive it, live and in replay.
	// Without it, private events are never delivered. Like Match it must
	// be fast and safe for concurrent use; it must not modify the event.
	Authorize func(e *store.Event) bool

	// Subject is the authenticated subject (a user id, a JWT "sub"), for
	// the callbacks and logs (see Subscriber.Subject).
	Subject string

	// PollInterval, when positive, serves this request in polling mode
	// (MCP SEP-1699): the response carries what is available after the
	// cursor, then "retry: PollInterval", and ends.
	PollInterval time.Duration

	// Cursor is the cursor to resume from (the client's Last-Event-ID;
	// RequestCursor reads it from a request the usual ways), "" to start
	// at the hub's position. It is validated like a Last-Event-ID (too
	// long, or CR, LF or NUL: 400).
	Cursor string
	// FromStart replays the whole retained history (like a cursor before
	// the first event; Mercure's "earliest"). It takes precedence over
	// Cursor.
	FromStart bool

	// Priming is what the stream opens with (see Priming): the zero value,
	// PrimingID, sends the cursor as a lone id, invisible to clients.
	Priming Priming

	// Policy decides what happens when the subscriber's queue is full:
	// PolicyDisconnect (the zero value) or PolicyDrop.
	Policy Policy
	// OnSlow, when set, is called the first time the subscriber's queue
	// is full, and its answer is the subscriber's policy from then on
	// (Policy until then): to choose per subscriber when it matters, say
	// PolicyDrop for a dashboard that only wants the newest state and
	// PolicyDisconnect, which loses nothing (the client resumes), for the
	// rest, and to log or count the slow ones. It runs on the goroutine
	// that queued the event (for log events the one that dispatches to
	// every subscriber; for Subscriber.Notify its caller's): it must
	// return at once and must not call the hub.
	OnSlow func(s *Subscriber) Policy

	// OnConnect, when set, is called once the subscriber is registered
	// (every event dispatched from then on reaches it), before its
	// response starts. It runs on the subscriber's goroutine.
	OnConnect func(s *Subscriber)
	// OnDisconnect, when set, is called when the subscriber's response
	// ends, after it has left the hub (Subscribers no longer counts it),
	// on the goroutine that served the stream: on HTTP/1.1 that is no
	// longer the handler's, which has returned (see Hub.Serve).
	OnDisconnect func(s *Subscriber, reason DisconnectReason)

	// OnResume, when set, is called once the resume outcome is known and
	// before the first byte of the stream is sent, with the response
	// headers, which it may change (headers that depend on the outcome).
	// It is not called for a response that is not a stream (an error, or
	// 204 for a finished completable stream). It runs on the subscriber's
	// goroutine.
	OnResume func(h http.Header, r Resume)

	// Deadline, when not zero, ends the stream at that time (on the hub's
	// Clock) with a "retry:", as Config.MaxLifetime does: for example the
	// expiry of the token that authorized the subscription. A deadline
	// already passed ends the stream as soon as it opens.
	Deadline time.Time
}

// Resume tells Subscription.OnResume how a stream starts.
type Resume struct {
	// Replayed reports that the history after the cursor (or, with
	// FromStart, the whole retained history) is replayed, possibly none.
	Replayed bool
	// Reset is why the cursor could not be served, sse.ResetExpired or
	// sse.ResetUnknown, or "": the stream then starts with a reset event
	// and the response carries ResetHeader. When the log expired the
	// cursor but the store kept every event of the subscription's private
	// channels after it (store.Keeper), those events are replayed first
	// (Replayed is set too) and the reset, for the other topics, follows
	// them; a subscription of private channels only gets no reset then.
	Reset string
	// Head is the head of the log when the stream starts from it (no
	// cursor, or a reset): the id of the priming or reset event, the hub's
	// position (see Stats.Position), never a publisher's custom id. It is
	// "" when the log is empty, and when Replayed without a reset.
	Head string
}

// normalize validates a subscription's topics against the limits and drops
// duplicates.
func (h *Hub) normalize(sub *Subscription) error {
	if len(sub.Topics) > h.cfg.MaxTopics {
		return fmt.Errorf("%w: %d > %d", ErrTooManyTopics, len(sub.Topics), h.cfg.MaxTopics)
	}
	for _, t := range sub.Topics {
		if t == "" {
			return fmt.Errorf("%w: %q", ErrReservedTopic, t)
		}
	}
	if len(sub.Topics) > 1 {
		ts := slices.Clone(sub.Topics)
		slices.Sort(ts)
		sub.Topics = slices.Compact(ts)
	}
	if len(sub.Topics) == 0 && sub.Match == nil {
		return ErrNoTopics
	}
	return nil
}
