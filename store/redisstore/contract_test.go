package redisstore_test

import (
	"testing"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

func limitsConfig(prefix string, l storetest.Limits) redisstore.Config {
	return redisstore.Config{Prefix: prefix, MaxLen: int64(l.MaxEvents), MaxBytes: l.MaxBytes, MaxAge: l.TTL, Now: l.Now,
		KeepPerChannel: l.KeepPerChannel, KeepFor: l.KeepFor}
}

func TestContract(t *testing.T) {
	url := redisURL(t)
	prefixes := map[store.Store]string{}
	var mu = make(chan struct{}, 1)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, l storetest.Limits) store.Store {
			prefix := uniquePrefix(t)
			deleteKeys(t, url, prefix)
			s := open(t, url, limitsConfig(prefix, l))
			mu <- struct{}{}
			prefixes[s] = prefix
			<-mu
			return s
		},
		Reopen: func(t *testing.T, s store.Store, l storetest.Limits) store.Store {
			mu <- struct{}{}
			prefix := prefixes[s]
			<-mu
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s2 := open(t, url, limitsConfig(prefix, l))
			mu <- struct{}{}
			prefixes[s2] = prefix
			<-mu
			return s2
		},
		// MAXLEN ~ trims approximately, and so does MaxBytes.
		ApproximateCount: true,
		ApproximateBytes: true,
	})
}
