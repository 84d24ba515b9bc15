package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/sluicehq/sluice/internal/flagusage"
	"github.com/sluicehq/sluice/mercure"
)

func init() {
	commands["token"] = command{summary: "print a JWT granting publish/subscribe topics (development)", run: runToken}
}

const tokenUsage = `usage: sluice token [--jwt-key KEY] [--publish TOPIC]... [--subscribe TOPIC]... [--relay NAME]... [--ttl D]

Prints a classic Mercure JWT whose "mercure" claim grants publishing to the
--publish topics, receiving the private updates of the --subscribe
topics (exact topics, URI templates, or * for all) and starting the
--relay relays of "sluice serve --relay", signed with the key the hub
verifies (a relay is granted by the subscriber key). For development and scripts; production tokens come
from your application or authorization server.

The key is an HMAC secret, a PEM private key with --jwt-alg RS256 (PS*,
ES*, EdDSA…), or @PATH to read it from a file. Without one, the token is
signed with the development key of a hub in development mode on the same
--store (bolt:./sluice.db keeps it in ./sluice.db.dev-key): run it where
you ran "sluice serve".

Flags:
`

// tokenEnvFlags are the flags of token and publish read from SLUICE_*.
var tokenEnvFlags = map[string]bool{"jwt-key": true, "jwt-alg": true, "hub": true, "token": true, "store": true}

// envOf returns the environment variable of the flags in names, for
// flagusage.Print.
func envOf(names map[string]bool) func(string) string {
	return func(name string) string {
		if names[name] {
			return envName(name)
		}
		return ""
	}
}

// applyEnvOnly is applyEnv restricted to the flags in names.
func applyEnvOnly(fs *flag.FlagSet, names map[string]bool, lookupEnv func(string) (string, bool)) error {
	return applyEnv(fs, func(k string) (string, bool) {
		for name := range names {
			if envName(name) == k {
				return lookupEnv(k)
			}
		}
		return "", false
	})
}

// runToken is the token command.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return tokenMain(args, os.LookupEnv, stdout, stderr)
}

func tokenMain(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), tokenUsage)
		flagusage.Print(fs.Output(), fs, envOf(tokenEnvFlags))
	}
	key := fs.String("jwt-key", "", "signing `key`: HMAC secret, PEM private key, or @PATH")
	alg := fs.String("jwt-alg", "", "JWT `algorithm` (default HS256 for secrets)")
	var publish, subscribe, relays listFlag
	fs.Var(&publish, "publish", "`topic` the token may publish to (repeatable, comma-separated)")
	fs.Var(&subscribe, "subscribe", "`topic` whose private updates the token may receive (repeatable, comma-separated)")
	fs.Var(&relays, "relay", "`name` of a relay (serve --relay) the token may start (repeatable, comma-separated)")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token (0: never expires)")
	storeDSN := fs.String("store", defaultStoreDSN, "without --jwt-key, sign with the development key of the hub on this store `DSN` (bolt:PATH)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := applyEnvOnly(fs, tokenEnvFlags, lookupEnv); err != nil {
		fmt.Fprintf(stderr, "sluice token: %v\n", err)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "sluice token: unexpected argument %q\n", fs.Arg(0))
		return 2
	case len(publish) == 0 && len(subscribe) == 0 && len(relays) == 0:
		fmt.Fprintln(stderr, "sluice token: give at least one --publish or --subscribe topic, or a --relay")
		return 2
	case *ttl < 0:
		fmt.Fprintln(stderr, "sluice token: --ttl must not be negative")
		return 2
	}
	var material []byte
	var err error
	if *key != "" {
		material, err = readKey("jwt-key", *key)
	} else {
		material, err = tokenDevKey(*storeDSN, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice token: %v\n", err)
		return 2
	}
	if *key != "" {
		warnShortKey(stderr, "token", material, *alg)
	}
	tok, err := mercure.NewClassicToken(material, *alg, mercure.ClassicToken{
		Publish: []string(publish), Subscribe: []string(subscribe), Relay: []string(relays), TTL: *ttl})
	if err != nil {
		fmt.Fprintf(stderr, "sluice token: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

// tokenDevKey returns the development key of the hub on the store dsn, for
// a token command given no key, and says on stderr which file it used.
func tokenDevKey(dsn string, stderr io.Writer) ([]byte, error) {
	c := serveConfig{storeDSN: dsn}
	if err := c.parseStore(); err != nil {
		return nil, err
	}
	path := devKeyPath(c.storeKind, c.storePath)
	if path == "" {
		return nil, fmt.Errorf("no --jwt-key (SLUICE_JWT_KEY), and the store %q keeps no development key "+
			"(only bolt stores do): pass the hub's key, or the token it logged", dsn)
	}
	key, warning, err := loadDevKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no --jwt-key (SLUICE_JWT_KEY), and no development key at %s: "+
			"run this where \"sluice serve\" runs in development mode (or pass its --store), or pass the hub's key", path)
	}
	if err != nil {
		return nil, err
	}
	if warning != "" {
		fmt.Fprintf(stderr, "sluice token: warning: %s\n", warning)
	}
	fmt.Fprintf(stderr, "sluice token: signed with the development key in %s\n", path)
	return []byte(key), nil
}

// warnShortKey writes shortHMACKey's warning, if any, for --jwt-key of the
// command cmd.
func warnShortKey(stderr io.Writer, cmd string, material []byte, alg string) {
	if k, err := mercure.ParseKey(material, alg); err == nil {
		if w := shortHMACKey("jwt-key", k, material); w != "" {
			fmt.Fprintf(stderr, "sluice %s: warning: %s\n", cmd, w)
		}
	}
}
