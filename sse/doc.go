// Package sse implements the Server-Sent Events wire format of the WHATWG HTML
// standard: a streaming parser, an injection-safe encoder and a reconnecting
// client. It imports only the standard library.
//
// # Wire format
//
// Read and Reader parse any event stream exactly as the standard's event
// stream interpretation does, including a byte order mark, CR, LF and CRLF
// line ends split across reads, ids containing NUL, retry values, and an
// unterminated event at the end of the stream (discarded). A Reader's buffer
// is bounded by MaxEventSize. AppendEvent, AppendComment and Prepare write
// events without allocating, splitting data on every line break so that no
// payload can start a field or an event of its own, and refusing ids and
// types that contain CR, LF or NUL. AppendID and AppendRetry write a lone
// id or retry field, which dispatches no event: AppendID primes a stream
// with a cursor its client resumes from.
//
// # Client
//
// Stream consumes an event stream like a browser's EventSource, over any
// transport a ConnectFunc opens; Connect and Client do it over HTTP, with
// any method, headers and body. When a connection ends or breaks, the
// client waits the reconnection time (the server's retry, default 3 s, with
// jittered, capped backoff after repeated failures) and reconnects with the
// last event id as Last-Event-ID, so the server can resume exactly after the
// last event received. 204 No Content ends the stream for good. Waits and
// the read timeout go through a Clock, and transient failures are reported
// to OnRetry only: the iterator yields events, the reset signal, and at
// most one final error. A block with no data line (an id alone: the
// invisible priming of a stream) is never yielded; it only sets the last
// event id, as in a browser.
//
// That is what Connect does for a GET. A request with another method — the
// POST of an LLM API or of an MCP call — is sent once: the server ending
// its stream ends the iteration, and a broken connection ends it with
// ErrConnectionLost, so a prompt is never sent (and paid for) twice.
// WithResume resumes such a stream with another request, as MCP's
// streamable HTTP transport resumes a POST's stream with a GET carrying
// Last-Event-ID; WithResend sends the same request again, as EventSource
// does; WithOneShot makes one connection whatever the method.
//
// # The reset signal
//
// When a sluice server cannot replay the history after the Last-Event-ID a
// client sent (the id is unknown, or older than what the server keeps), it
// does not silently skip the lost events. It sets the response header
// ResetHeader ("Sluice-Reset") to the reason and sends, before any live
// event, an event of type ResetEventType ("sluice-reset") whose data is the
// JSON object {"head":"<current head id>","reason":"expired"|"unknown"} and
// whose id is the head, so the client resumes from there on its next
// reconnection; ResetEvent builds it. (A sluice hub may first replay the
// events of the subscription's private channels, which it keeps apart
// from the log: the reset then follows them and concerns the other
// topics.) The client yields it as a *ResetError,
// which matches ErrHistoryLost, and the iteration goes on with the live
// events: the application resynchronises (say, from a snapshot) and keeps
// ranging. A browser sees it as an ordinary event of that type.
package sse
