package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/mercure"
)

// limits are the bounds on what one request may ask of the hub (see
// SECURITY.md): each flag sets a mercure.Config field, and its default is
// that field's.
type limits struct {
	maxBodySize       int
	maxPublishTopics  int
	maxSelectors      int
	maxTopics         int
	maxSelectorLen    int
	maxSelectorCost   int
	maxPatternBytes   int
	maxActive         int
	maxTokenSize      int
	selectorCacheSize int
}

func (l *limits) register(fs *flag.FlagSet) {
	fs.IntVar(&l.maxBodySize, "max-body-size", mercure.DefaultMaxBodySize, "largest publish or QUERY body, in `bytes` (413 beyond)")
	fs.IntVar(&l.maxPublishTopics, "max-publish-topics", defaultMaxPublishTopics, "most topics of one update")
	fs.IntVar(&l.maxSelectors, "max-selectors", mercure.DefaultMaxMatchers, "most match/match_exact/match_urlpattern parameters, and patterns (URI templates and URL patterns), of one subscription")
	fs.IntVar(&l.maxTopics, "max-topics", defaultMaxTopics, "most topic parameters of one subscription")
	fs.IntVar(&l.maxSelectorLen, "max-selector-len", mercure.DefaultMaxSelectorLen, "longest selector, token grant or topic of an update, in `bytes`")
	fs.IntVar(&l.maxSelectorCost, "max-selector-cost", mercure.DefaultMaxSelectorCost, "what matching one subscription's patterns may cost per byte of a topic: the wildcards, groups and template variables that may match at once, in all")
	fs.IntVar(&l.maxPatternBytes, "max-pattern-bytes", mercure.DefaultMaxPatternBytes, "longest text of one subscription's patterns, in all, in `bytes`")
	fs.IntVar(&l.maxActive, "max-active-subscriptions", mercure.DefaultMaxActiveSubscriptions, "with --subscriptions, most selectors of one connection (each announced by subscription events)")
	fs.IntVar(&l.maxTokenSize, "max-token-size", mercure.DefaultMaxTokenSize, "longest JWT, in `bytes`")
	fs.IntVar(&l.selectorCacheSize, "selector-cache-size", mercure.DefaultSelectorCacheSize, "compiled patterns kept for reuse, in `bytes`")
}

// validate refuses a limit that is not positive: the hub would take it
// for the library's "unset" and apply the default, which is not what
// --max-body-size 0 or -1 asks for.
func (l *limits) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"max-body-size", l.maxBodySize}, {"max-publish-topics", l.maxPublishTopics}, {"max-selectors", l.maxSelectors},
		{"max-topics", l.maxTopics}, {"max-selector-len", l.maxSelectorLen}, {"max-selector-cost", l.maxSelectorCost},
		{"max-pattern-bytes", l.maxPatternBytes}, {"max-active-subscriptions", l.maxActive},
		{"max-token-size", l.maxTokenSize}, {"selector-cache-size", l.selectorCacheSize},
	} {
		if f.v <= 0 {
			return fmt.Errorf("--%s: must be positive, got %d", f.name, f.v)
		}
	}
	return nil
}

// The defaults of the flags that set the engine and of the Mercure limits
// that default to the engine's (mercure.Config.MaxPublishTopics and
// MaxTopicParams default to the engine's MaxTopics).
const (
	defaultHeartbeat        = 40 * time.Second
	defaultDispatchTimeout  = 5 * time.Second
	defaultMaxLifetime      = 10 * time.Minute
	defaultMaxPublishTopics = 1000
	defaultMaxTopics        = 1000
)
