package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/flagusage"
	"github.com/sluicehq/sluice/mercure"
)

func init() {
	commands["publish"] = command{summary: "publish one event to a hub (Mercure POST) and print its id", run: runPublish}
}

const publishUsage = `usage: sluice publish --hub URL --topic TOPIC --data DATA [flags]

Publishes one update to a Mercure hub with a form POST and prints the id
the hub gave it. --hub is the hub's base URL (http://localhost:8080) or
its full hub URL (…/.well-known/mercure). Authorization: --token, or
--jwt-key to mint a short-lived token for the --topic topics (the key the
hub verifies with; @PATH reads a file). SLUICE_HUB, SLUICE_TOKEN,
SLUICE_JWT_KEY and SLUICE_JWT_ALG are read when the flags are not given.

Exit status: 0 published, 1 the hub refused or could not be reached (one
line on standard error), 2 usage error.

Flags:
`

// runPublish is the publish command.
func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return publishMain(ctx, args, os.LookupEnv, os.Stdin, stdout, stderr)
}

func publishMain(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), publishUsage)
		flagusage.Print(fs.Output(), fs, envOf(tokenEnvFlags))
	}
	hubURL := fs.String("hub", "", "hub `URL`")
	var topics listFlag
	fs.Var(&topics, "topic", "`topic` of the update (repeatable; the first is canonical)")
	data := fs.String("data", "", "the update's data (- reads standard input)")
	id := fs.String("id", "", "the update's id (default: the hub chooses)")
	typ := fs.String("type", "", "SSE event `type`")
	retry := fs.Duration("retry", 0, "reconnection time sent with the update")
	private := fs.Bool("private", false, "deliver only to subscribers authorized for the topic")
	token := fs.String("token", "", "publisher `JWT`")
	key := fs.String("jwt-key", "", "mint a token with this `key` instead of --token")
	alg := fs.String("jwt-alg", "", "JWT `algorithm` for --jwt-key (default HS256)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "sluice publish: "+format+"\n", a...)
		return 2
	}
	if err := applyEnvOnly(fs, tokenEnvFlags, lookupEnv); err != nil {
		return usageErr("%v", err)
	}
	dataSet := false
	fs.Visit(func(f *flag.Flag) { dataSet = dataSet || f.Name == "data" })
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *hubURL == "":
		return usageErr("--hub is required")
	case len(topics) == 0:
		return usageErr("at least one --topic is required")
	case !dataSet:
		return usageErr("--data is required (- reads standard input)")
	case *token != "" && *key != "":
		return usageErr("give --token or --jwt-key, not both")
	case *token == "" && *key == "":
		return usageErr("--token or --jwt-key is required")
	}
	target, err := hubEndpoint(*hubURL)
	if err != nil {
		return usageErr("%v", err)
	}
	if *data == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "sluice publish: reading standard input: %v\n", err)
			return 1
		}
		*data = string(b)
	}
	if *key != "" {
		material, err := readKey("jwt-key", *key)
		if err != nil {
			return usageErr("%v", err)
		}
		warnShortKey(stderr, "publish", material, *alg)
		if *token, err = mercure.NewToken(material, *alg, []string(topics), nil, 5*time.Minute); err != nil {
			return usageErr("%v", err)
		}
	}

	form := url.Values{"topic": topics, "data": {*data}}
	if *id != "" {
		form.Set("id", *id)
	}
	if *typ != "" {
		form.Set("type", *typ)
	}
	if *retry > 0 {
		form.Set("retry", fmt.Sprint(retry.Milliseconds()))
	}
	if *private {
		form.Set("private", "on")
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	got, err := postUpdate(ctx, target, *token, form)
	if err != nil {
		fmt.Fprintf(stderr, "sluice publish: %s\n", oneLine(err))
		return 1
	}
	fmt.Fprintln(stdout, got)
	return 0
}

// hubEndpoint returns the hub URL for a base or hub URL.
func hubEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--hub: want an http or https URL, got %q", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = mercure.HubPath
	}
	return u.String(), nil
}

// postUpdate POSTs the form and returns the id the hub answered.
func postUpdate(ctx context.Context, target, token string, form url.Values) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("publish: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("publish: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("publish: reading the answer: %w", err)
	}
	text := strings.TrimSpace(string(body))
	if res.StatusCode != http.StatusOK {
		if text == "" || text == http.StatusText(res.StatusCode) {
			return "", fmt.Errorf("hub answered %s", res.Status)
		}
		return "", fmt.Errorf("hub answered %s: %s", res.Status, text)
	}
	if text == "" {
		return "", errors.New("hub answered 200 without an id")
	}
	return text, nil
}
