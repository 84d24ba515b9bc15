package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/mercure"
)

// jwksFlags are the JWKS flags of serve: key sets fetched from an
// authorization server instead of (or, per role, beside) --jwt-key.
type jwksFlags struct {
	url           string // --jwt-jwks-url: both roles
	publisherURL  string
	subscriberURL string
	refresh       time.Duration
	minRefetch    time.Duration
	timeout       time.Duration
	maxSize       int64

	// Derived by parseKeys: the URL each role uses ("" for none).
	pubURL, subURL string
	// Derived by newServer: one key set per distinct URL.
	sets []*mercure.JWKS
}

func (j *jwksFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&j.url, "jwt-jwks-url", "", "JWKS `URL` whose keys verify publishers and subscribers, instead of --jwt-key (https; http only to a loopback host)")
	fs.StringVar(&j.publisherURL, "publisher-jwks-url", "", "JWKS `URL` for publishers, instead of --jwt-key or --jwt-jwks-url")
	fs.StringVar(&j.subscriberURL, "subscriber-jwks-url", "", "JWKS `URL` for subscribers, instead of --jwt-key or --jwt-jwks-url")
	fs.DurationVar(&j.refresh, "jwks-refresh-interval", mercure.DefaultJWKSRefreshInterval, "how often a JWKS is fetched again: a key removed from it stops verifying tokens within this long")
	fs.DurationVar(&j.minRefetch, "jwks-min-refetch-interval", mercure.DefaultJWKSMinRefetchInterval, "least time between JWKS fetches caused by tokens with an unknown kid, and longest retry delay after a failed fetch")
	fs.DurationVar(&j.timeout, "jwks-timeout", mercure.DefaultJWKSTimeout, "bound on one JWKS fetch")
	fs.Int64Var(&j.maxSize, "jwks-max-size", mercure.DefaultJWKSMaxSize, "largest JWKS response, in `bytes`")
}

// roleURLs returns the JWKS URL of each role: its own flag, else
// --jwt-jwks-url unless the role has its own key. A key and a JWKS URL for
// the same role at the same level are an error.
func (j *jwksFlags) roleURLs(c *serveConfig) (pub, sub string, err error) {
	for _, p := range []struct{ key, keyFlag, url, urlFlag string }{
		{c.jwtKey, "jwt-key", j.url, "jwt-jwks-url"},
		{c.publisherKey, "publisher-jwt-key", j.publisherURL, "publisher-jwks-url"},
		{c.subscriberKey, "subscriber-jwt-key", j.subscriberURL, "subscriber-jwks-url"},
	} {
		if p.key != "" && p.url != "" {
			return "", "", fmt.Errorf("--%s and --%s: set one of them", p.keyFlag, p.urlFlag)
		}
	}
	for name, d := range map[string]time.Duration{"--jwks-refresh-interval": j.refresh,
		"--jwks-min-refetch-interval": j.minRefetch, "--jwks-timeout": j.timeout} {
		if d <= 0 {
			return "", "", fmt.Errorf("%s: must be positive, got %v", name, d)
		}
	}
	if j.maxSize <= 0 {
		return "", "", fmt.Errorf("--jwks-max-size: must be positive, got %d", j.maxSize)
	}
	pub, sub = j.publisherURL, j.subscriberURL
	if pub == "" && c.publisherKey == "" {
		pub = j.url
	}
	if sub == "" && c.subscriberKey == "" {
		sub = j.url
	}
	for _, u := range []struct{ url, flag string }{{pub, "publisher"}, {sub, "subscriber"}} {
		if u.url == "" {
			continue
		}
		if _, err := mercure.NewJWKS(j.config(u.url, nil)); err != nil {
			return "", "", fmt.Errorf("%s JWKS: %w", u.flag, err)
		}
	}
	return pub, sub, nil
}

func (j *jwksFlags) config(url string, log *slog.Logger) mercure.JWKSConfig {
	return mercure.JWKSConfig{URL: url, RefreshInterval: j.refresh, MinRefetchInterval: j.minRefetch,
		Timeout: j.timeout, MaxSize: j.maxSize, Logger: log}
}

// jwksKeys sets the publisher and subscriber keys of the roles that use a
// JWKS, one key set per distinct URL.
func (c *serveConfig) jwksKeys(log *slog.Logger) error {
	byURL := map[string]*mercure.JWKS{}
	for _, r := range []struct {
		url string
		key **mercure.Key
	}{{c.jwks.pubURL, &c.pubKey}, {c.jwks.subURL, &c.subKey}} {
		if r.url == "" {
			continue
		}
		set := byURL[r.url]
		if set == nil {
			var err error
			if set, err = mercure.NewJWKS(c.jwks.config(r.url, log)); err != nil {
				return err
			}
			byURL[r.url] = set
			c.jwks.sets = append(c.jwks.sets, set)
		}
		k := set.Key()
		*r.key = &k
	}
	return nil
}

// runJWKS keeps the key sets refreshed until ctx is done.
func (s *hubServer) runJWKS(ctx context.Context) {
	for _, set := range s.cfg.jwks.sets {
		s.log.Info("JWKS", "url", set.URL(), "refresh", s.cfg.jwks.refresh)
		go set.Run(ctx)
	}
}

// jwksReady returns why a key set is not ready, or nil.
func (s *hubServer) jwksReady() error {
	var errs []error
	for _, set := range s.cfg.jwks.sets {
		errs = append(errs, set.Ready())
	}
	return errors.Join(errs...)
}
