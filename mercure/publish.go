package mercure

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// Errors of a publish request the caller may tell apart (they are wrapped
// with the details; all of them are answered with 400).
var (
	// ErrMissingTopic reports a publish without any "topic" field.
	ErrMissingTopic = errors.New("mercure: missing topic")
	// ErrTooManyTopics reports more topics than Config.MaxPublishTopics.
	ErrTooManyTopics = errors.New("mercure: too many topics")
	// ErrInvalidField reports a field that breaks a validation rule: control
	// or format characters, a reserved topic, id or type, a malformed
	// retry, data that is not UTF-8.
	ErrInvalidField = errors.New("mercure: invalid field")
)

// reservedPath is the hub path: topics under it are the hub's own
// (subscription events) and cannot be published to.
const reservedPath = HubPath

// parsePublishForm reads the form of a publish request (MERCURE.md §2; the
// body must already be limited) into a message, and runs the checks that
// come before authorization in the reference: topic presence, count,
// length and characters, and retry. checkMessage completes the validation
// once the publisher is authorized for the topics.
func (h *Hub) parsePublishForm(r *http.Request) (hub.Message, error) {
	f, err := parseForm(r)
	if err != nil {
		return hub.Message{}, err
	}
	if err := h.checkTopics(f.topics); err != nil {
		return hub.Message{}, err
	}
	retry, err := parseRetry(f.retry)
	if err != nil {
		return hub.Message{}, err
	}
	return hub.Message{
		Topics:  f.topics,
		Event:   sse.Event{ID: f.id, Type: f.typ, Data: f.data, Retry: retry},
		Private: f.private,
	}, nil
}

// publishForm is what a publish form says of its update: every topic
// value, the first id, type, data and retry values (as url.Values.Get),
// and whether it has a private field.
type publishForm struct {
	topics               []string
	id, typ, data, retry string
	private              bool
}

// formOf takes the update's fields from a parsed form.
func formOf(v url.Values) publishForm {
	_, private := v["private"]
	return publishForm{topics: v["topic"], id: v.Get("id"), typ: v.Get("type"), data: v.Get("data"), retry: v.Get("retry"), private: private}
}

// checkTopics checks the topics of an update: present, not too many, not
// too long, printable.
func (h *Hub) checkTopics(topics []string) error {
	if len(topics) == 0 {
		return ErrMissingTopic
	}
	if len(topics) > h.cfg.MaxPublishTopics {
		return fmt.Errorf("%w: %d > %d", ErrTooManyTopics, len(topics), h.cfg.MaxPublishTopics)
	}
	for _, t := range topics {
		if len(t) > h.cfg.MaxSelectorLen {
			return fmt.Errorf("%w: a topic is longer than %d bytes", ErrInvalidField, h.cfg.MaxSelectorLen)
		}
		if !validProtocolString(t) {
			return fmt.Errorf("%w: topic %q contains control or format characters", ErrInvalidField, t)
		}
	}
	return nil
}

// formBodies recycles the buffers publish bodies are read into.
var formBodies = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledBody is the largest body buffer put back into formBodies.
const maxPooledBody = 64 << 10

// parseForm reads the form of a publish request as r.ParseForm would (the
// same values and errors), at a lower cost for the usual one, a POST of
// application/x-www-form-urlencoded without a query string: its body is
// read into a recycled buffer, without ParseForm's media type parsing,
// growing reads and merged r.Form, and parsed by parseFormFields when it
// holds only an update's fields, by url.ParseQuery (as ParseForm does)
// otherwise. Any other request goes to r.ParseForm.
func parseForm(r *http.Request) (publishForm, error) {
	if r.PostForm != nil || r.Method != http.MethodPost || r.Body == nil || r.URL == nil || r.URL.RawQuery != "" ||
		!plainFormType(r.Header.Get("Content-Type")) {
		err := r.ParseForm()
		return formOf(r.PostForm), err
	}
	bp := formBodies.Get().(*[]byte)
	b, err := readAll(r.Body, (*bp)[:0], r.ContentLength)
	var body string
	if err == nil {
		body = string(b)
	}
	if cap(b) <= maxPooledBody {
		*bp = b[:0]
		formBodies.Put(bp)
	}
	if err != nil {
		return publishForm{}, err
	}
	if f, ok := parseFormFields(body); ok {
		return f, nil
	}
	v, err := url.ParseQuery(body)
	return formOf(v), err
}

// maxFastFields bounds the fields parseFormFields reads, far below
// url.ParseQuery's limit (urlmaxqueryparams, 10,000 by default).
const maxFastFields = 64

// parseFormFields parses a form body whose fields are all an update's
// (topic, id, type, data, retry, private, in any number and order, but
// at most maxFastFields of them), as url.ParseQuery and formOf would: values
// unescaped by url.QueryUnescape, the first value of each but topic. It
// returns false for any other body (another field, an escaped name, a ";",
// a value url.QueryUnescape refuses, too many fields), which url.ParseQuery
// then parses into its exact values and error. It saves ParseQuery's map
// and its slice per field.
func parseFormFields(body string) (publishForm, bool) {
	var f publishForm
	var seen uint8
	const (
		seenID = 1 << iota
		seenType
		seenData
		seenRetry
	)
	for fields := 0; body != ""; fields++ {
		var field string
		field, body, _ = strings.Cut(body, "&")
		if fields == maxFastFields || strings.IndexByte(field, ';') >= 0 {
			return f, false
		}
		if field == "" {
			continue
		}
		key, raw, _ := strings.Cut(field, "=")
		value, err := url.QueryUnescape(raw)
		if err != nil {
			return f, false
		}
		var dst *string
		var bit uint8
		switch key {
		case "topic":
			f.topics = append(f.topics, value)
			continue
		case "private":
			f.private = true
			continue
		case "id":
			dst, bit = &f.id, seenID
		case "type":
			dst, bit = &f.typ, seenType
		case "data":
			dst, bit = &f.data, seenData
		case "retry":
			dst, bit = &f.retry, seenRetry
		default:
			return f, false
		}
		if seen&bit == 0 {
			*dst, seen = value, seen|bit
		}
	}
	return f, true
}

// plainFormType reports the Content-Type values that mime.ParseMediaType
// reads as application/x-www-form-urlencoded without error, in the
// spellings clients send.
func plainFormType(ct string) bool {
	const form = "application/x-www-form-urlencoded"
	if len(ct) < len(form) || !strings.EqualFold(ct[:len(form)], form) {
		return false
	}
	switch rest := ct[len(form):]; {
	case rest == "":
		return true
	case strings.EqualFold(rest, "; charset=utf-8"), strings.EqualFold(rest, ";charset=utf-8"):
		return true
	}
	return false
}

// readAll reads r to its end, appending to b, whose capacity is first raised
// to size+1 when the size is known, so that a body is read without regrowing.
func readAll(r io.Reader, b []byte, size int64) ([]byte, error) {
	if size > 0 && size < maxPooledBody && int(size) >= cap(b) {
		b = make([]byte, 0, size+1)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// checkMessage completes the validation of an authorized update with
// Mercure's own rules (the engine applies its limits and the wire's rules
// when it publishes): reserved and dot-segment topics, reserved ids and
// types, printable ids and types, UTF-8 data.
func (h *Hub) checkMessage(m *hub.Message) error {
	for _, t := range m.Topics {
		if t == "*" {
			return fmt.Errorf("%w: the topic %q is reserved", ErrInvalidField, t)
		}
		if hasDotSegment(t) {
			return fmt.Errorf("%w: the topic %q has a dot segment (\".\" or \"..\"), which URL patterns would resolve away", ErrInvalidField, t)
		}
		if strings.HasPrefix(t, hub.ReservedTopicPrefix) {
			return fmt.Errorf("%w: the topic %q is a private channel of the hub (%s…)", ErrInvalidField, t, hub.ReservedTopicPrefix)
		}
		if h.selectors.reservedTopic(t) {
			return fmt.Errorf("%w: the topic %q is in the hub's reserved namespace", ErrInvalidField, t)
		}
	}
	if id := m.Event.ID; id != "" {
		switch {
		case !validProtocolString(id):
			return fmt.Errorf("%w: id contains control or format characters", ErrInvalidField)
		case strings.HasPrefix(id, "#"):
			return fmt.Errorf("%w: ids starting with # are reserved", ErrInvalidField)
		case id == earliest:
			return fmt.Errorf("%w: the id %q is reserved", ErrInvalidField, id)
		case len(id) > store.MaxIDLen:
			return fmt.Errorf("%w: id longer than %d bytes", ErrInvalidField, store.MaxIDLen)
		}
	}
	switch typ := m.Event.Type; {
	case !validProtocolString(typ):
		return fmt.Errorf("%w: type contains control or format characters", ErrInvalidField)
	case typ == "mercure":
		return fmt.Errorf("%w: the type %q is reserved", ErrInvalidField, typ)
	case strings.HasPrefix(typ, hub.ReservedTypePrefix):
		return fmt.Errorf("%w: types starting with %s are reserved", ErrInvalidField, hub.ReservedTypePrefix)
	}
	if !utf8.ValidString(m.Event.Data) {
		return fmt.Errorf("%w: data is not valid UTF-8", ErrInvalidField)
	}
	return nil
}

// parseRetry parses the retry field: ASCII digits, a uint64 of
// milliseconds. Empty and 0 mean no retry. Values beyond what a
// time.Duration holds are clamped.
func parseRetry(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: retry must be ASCII digits", ErrInvalidField)
		}
	}
	ms, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: retry: %w", ErrInvalidField, err)
	}
	if ms > math.MaxInt64/uint64(time.Millisecond) {
		return time.Duration(math.MaxInt64), nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// validProtocolString reports whether s may be used as a topic, selector,
// id or type: valid UTF-8 without C0, DEL or C1 control characters and
// without Unicode format (Cf) characters.
func validProtocolString(s string) bool {
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			if !utf8.ValidString(s) {
				return false
			}
		case r < 0x20, r >= 0x7f && r <= 0x9f:
			return false
		case r > 0x9f && unicode.Is(unicode.Cf, r):
			return false
		}
	}
	return true
}

// reservedTopic reports whether topic is in the hub's reserved namespace
// (the subscription events' topics) as any selector sees it, so that no
// update can pass for a subscription event:
//   - as exact selectors and URI templates see it (its text), it contains
//     the hub path as a path: "/.well-known/mercure" followed by "/",
//     "?", "#" or its end, in any case, with backslashes read as slashes
//     and unreserved percent-escapes decoded;
//   - or, resolved as a URL reference against the hub's base as URL
//     patterns see it (the same resolution, see resolve), its path does,
//     whatever the scheme and host.
//
// Dot segments are refused before (hasDotSegment), so the two views differ
// only in what resolution normalises (case, escapes, separators, default
// ports), which both checks cover.
func (c *selectorCache) reservedTopic(topic string) bool {
	return !c.surelyUnreserved(topic) && c.parseReserved(topic)
}

// parseReserved is reservedTopic without the fast path.
func (c *selectorCache) parseReserved(topic string) bool {
	if textReserved(topic) {
		return true
	}
	in := c.resolve(topic)
	return in != nil && textReserved(in.Pathname())
}

// textReserved reports whether s contains the hub path as a path (see
// reservedTopic).
func textReserved(topic string) bool {
	t := strings.ToLower(strings.ReplaceAll(decodeUnreserved(topic), "\\", "/"))
	for i := 0; ; {
		j := strings.Index(t[i:], reservedPath)
		if j < 0 {
			return false
		}
		end := i + j + len(reservedPath)
		if end == len(t) || t[end] == '/' || t[end] == '?' || t[end] == '#' {
			return true
		}
		i = i + j + 1
	}
}

// surelyUnreserved reports, without parsing it, a topic that cannot be in
// the reserved namespace, so that the common topics skip the WHATWG parser
// (the most costly check of a publish). A topic in the namespace contains
// "mercure" (in any case), which comes either from the topic or from the
// base's path. From the topic: without "%" (decoded escapes) it must
// contain "mercure" itself, since parsing only removes dot segments and
// percent-encodes characters (never into letters such as "m"), and the
// decoding of unreserved escapes finds none it did not write. From the
// base: its path survives only when the reference, once leading spaces are
// trimmed, is empty or starts with "?" or "#", also right after a scheme
// equal to the base's (whose rest is then resolved as a relative
// reference); any other relative path replaces the base's last segment,
// "mercure", and one starting with "/" or "\" replaces the whole path.
// Topics with spaces or controls (trimmed or removed by the parser) go to
// the parser too.
func (c *selectorCache) surelyUnreserved(t string) bool {
	rel := t
	if sch := c.base.Scheme(); len(t) > len(sch) && t[len(sch)] == ':' && strings.EqualFold(t[:len(sch)], sch) {
		rel = t[len(sch)+1:]
	}
	if rel == "" || rel[0] == '?' || rel[0] == '#' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == '%' || c == 0x7f {
			return false
		}
	}
	return !containsFold(t, "mercure")
}

// containsFold reports whether s contains the lower-case ASCII word sub in
// any case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// hasDotSegment reports whether topic has a "." or ".." segment, also
// percent-encoded ("%2e"), before its query or fragment, segments being
// separated by "/", "\" or ":". URL patterns match a topic with its dot
// segments resolved away while exact selectors and URI templates match its
// text: refusing them at publish keeps both views, and the authorization
// of the publisher (also by selectors), on the same path.
func hasDotSegment(topic string) bool {
	if i := strings.IndexAny(topic, "?#"); i >= 0 {
		topic = topic[:i]
	}
	if !strings.Contains(topic, ".") && !strings.Contains(topic, "%") {
		return false
	}
	for seg := range strings.FieldsFuncSeq(topic, func(r rune) bool { return r == '/' || r == '\\' || r == ':' }) {
		switch strings.ToLower(seg) {
		case ".", "..", "%2e", ".%2e", "%2e.", "%2e%2e":
			return true
		}
	}
	return false
}

// decodeUnreserved decodes the percent-escapes of RFC 3986 unreserved
// characters (ALPHA, DIGIT, "-", ".", "_", "~") and leaves the others.
func decodeUnreserved(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if c := hi<<4 | lo; ok1 && ok2 && isUnreserved(c) {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
