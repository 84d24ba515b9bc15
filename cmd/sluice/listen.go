package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sluicehq/sluice/internal/flagusage"
	"github.com/sluicehq/sluice/sse"
)

func init() {
	commands["listen"] = command{summary: "connect to an event stream and print its events", run: runListen}
}

const listenUsage = `usage: sluice listen [flags] URL

Connects to the event stream at URL and prints every event it receives.
Like a browser's EventSource it reconnects when the stream ends or breaks,
sending the last event id as Last-Event-ID and honouring the server's retry
(default 3s, with backoff after repeated failures). A 204 No Content ends it.
A request other than GET (--data, --method), such as the POST of an LLM API,
is sent once and never again: the end of its stream ends the command, and a
broken connection is an error.

Output, one event at a time:
  default   the event in wire form, a valid event stream itself:
              id: <last event id, if any>
              event: <type>
              data: <one line per line of data>
              <blank line>
  --json    one JSON object per line: {"id":..., "type":..., "data":...},
            where id is the last event id in effect for the event and type
            is "message" when the stream named none

Errors and reconnections are reported on standard error, one line each.
Exit status: 0 at a clean end (a 204 when reconnecting, the end of the
stream with --once or of a request other than GET, --timeout or an
interrupt), 1 on an error that ends the stream (a status other than 2xx, a
Content-Type other than text/event-stream, a broken connection of a request
other than GET, or with --once any failure or a status other than 200), 2
on a usage error.

Flags:
`

// headerFlags collects repeated -H 'Name: value' flags.
type headerFlags http.Header

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("want 'Name: value', got %q", v)
	}
	http.Header(h).Add(name, strings.TrimSpace(value))
	return nil
}

// runListen is the listen command.
func runListen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), listenUsage)
		flagusage.Print(fs.Output(), fs, nil)
	}
	jsonOut := fs.Bool("json", false, "print one JSON object per event per line")
	once := fs.Bool("once", false, "do not reconnect: end with the first connection")
	timeout := fs.Duration("timeout", 0, "stop after this long (0: never)")
	readTimeout := fs.Duration("read-timeout", 0, "reconnect when no bytes arrive for this long (0: never)")
	lastID := fs.String("last-event-id", "", "send this Last-Event-ID header with the first request (no encoding needed, unlike a cursor in the URL's query)")
	method := fs.String("method", "", "HTTP method (default GET, or POST with --data)")
	data := fs.String("data", "", "request body (a request other than GET is sent once)")
	headers := headerFlags{}
	fs.Var(headers, "H", "add a request `header` 'Name: value' (repeatable)")

	// Flags may come before and after the URL.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "sluice listen: want exactly one URL")
		fs.Usage()
		return 2
	}
	dataSet := false
	fs.Visit(func(f *flag.Flag) { dataSet = dataSet || f.Name == "data" })
	if *method == "" {
		*method = http.MethodGet
		if dataSet {
			*method = http.MethodPost
		}
	}
	var body io.Reader
	if dataSet {
		body = strings.NewReader(*data)
	}
	req, err := http.NewRequest(*method, rest[0], body)
	if err != nil {
		fmt.Fprintf(stderr, "sluice listen: %v\n", err)
		return 2
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		fmt.Fprintf(stderr, "sluice listen: want an http or https URL, got %q\n", rest[0])
		return 2
	}
	if req.URL.Fragment != "" {
		// A "#" left unencoded in a query value (an id such as
		// "#k3j9x0a2-1z") starts the fragment, which is never sent.
		fmt.Fprintf(stderr, "sluice listen: the URL's fragment %q is not sent to the server; percent-encode \"#\" in a query value as %%23, or pass the cursor with --last-event-id\n", "#"+req.URL.Fragment)
	}
	for name, values := range headers {
		req.Header[name] = values
	}
	if *lastID != "" {
		if !sse.ValidID(*lastID) {
			fmt.Fprintf(stderr, "sluice listen: --last-event-id must not contain CR, LF or NUL\n")
			return 2
		}
		req.Header.Set("Last-Event-ID", *lastID)
	}

	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	p := &printer{w: stdout, json: *jsonOut}
	var client sse.Client
	if *once {
		return listenOnce(ctx, &client, req, p, stderr)
	}
	opts := []sse.Option{sse.OnRetry(func(err *sse.RetryError) {
		fmt.Fprintf(stderr, "sluice listen: %v\n", errorLine(err))
	})}
	if *readTimeout > 0 {
		opts = append(opts, sse.WithReadTimeout(*readTimeout))
	}
	for e, err := range client.Connect(ctx, req, opts...) {
		var reset *sse.ResetError
		switch {
		case errors.As(err, &reset):
			fmt.Fprintf(stderr, "sluice listen: %v\n", oneLine(err))
		case ctx.Err() != nil:
			return 0
		case err != nil:
			fmt.Fprintf(stderr, "sluice listen: %v\n", errorLine(err))
			return 1
		default:
			if err := p.print(e); err != nil {
				fmt.Fprintf(stderr, "sluice listen: %v\n", err)
				return 1
			}
		}
	}
	return 0
}

// listenOnce reads one connection to its end.
func listenOnce(ctx context.Context, client *sse.Client, req *http.Request, p *printer, stderr io.Writer) int {
	connect, err := client.ConnectFunc(req)
	if err == nil {
		var body io.ReadCloser
		body, err = connect(ctx, req.Header.Get("Last-Event-ID"))
		if err == nil {
			defer body.Close()
			rd := sse.NewReader(body)
			for e, rerr := range rd.All() {
				if rerr != nil {
					err = rerr
					break
				}
				if err = p.print(e); err != nil {
					break
				}
			}
		}
	}
	switch {
	case ctx.Err() != nil, err == nil:
		return 0
	case errors.Is(err, sse.ErrDone):
		// Without reconnection there is nothing for 204 to stop: it is a
		// response with no stream, like any other status than 200.
		fmt.Fprintln(stderr, "sluice listen: 204 No Content: the server sent no stream")
		return 1
	default:
		fmt.Fprintf(stderr, "sluice listen: %v\n", errorLine(err))
		return 1
	}
}

// oneLine keeps an error message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// maxErrorBody bounds the part of an error response's body errorLine shows.
const maxErrorBody = 300

// errorLine is oneLine(err) followed, for an error status, by what the
// server said in a plain-text or JSON body ("400 Bad Request: missing topic
// parameter"), where servers explain what to do.
func errorLine(err error) string {
	msg := oneLine(err)
	var se *sse.StatusError
	if !errors.As(err, &se) || len(se.Body) == 0 || se.Err != nil {
		return msg
	}
	ct := strings.ToLower(se.Header.Get("Content-Type"))
	if !strings.HasPrefix(ct, "text/plain") && !strings.Contains(ct, "json") {
		return msg // HTML error pages say little in one line
	}
	body := strings.Join(strings.Fields(strings.ToValidUTF8(string(se.Body), "?")), " ")
	body = strings.TrimPrefix(strings.TrimPrefix(body, http.StatusText(se.StatusCode)), ": ")
	if body == "" {
		return msg
	}
	if len(body) > maxErrorBody {
		body = strings.ToValidUTF8(body[:maxErrorBody], "") + "…"
	}
	return msg + ": " + body
}

// printer writes events in the chosen form, one write per event.
type printer struct {
	w    io.Writer
	json bool
	buf  bytes.Buffer
	enc  *json.Encoder
}

// jsonEvent fixes the keys and their order.
type jsonEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data string `json:"data"`
}

func (p *printer) print(e sse.Event) error {
	p.buf.Reset()
	if p.json {
		if p.enc == nil {
			p.enc = json.NewEncoder(&p.buf)
			p.enc.SetEscapeHTML(false)
		}
		if err := p.enc.Encode(jsonEvent{ID: e.ID, Type: e.Type, Data: e.Data}); err != nil {
			return err
		}
	} else {
		// A parsed event always encodes: its id and type hold no line break.
		b, err := sse.AppendEvent(p.buf.AvailableBuffer(), sse.Event{ID: e.ID, Type: e.Type, Data: e.Data})
		if err != nil {
			return err
		}
		p.buf.Write(b)
	}
	_, err := p.w.Write(p.buf.Bytes())
	return err
}
