package natsstore_test

import (
	"sync"
	"testing"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/storetest"
)

func limitsConfig(stream string, l storetest.Limits) natsstore.Config {
	return natsstore.Config{Stream: stream, MaxMsgs: int64(l.MaxEvents), MaxBytes: l.MaxBytes, MaxAge: l.TTL, Now: l.Now,
		KeepPerChannel: l.KeepPerChannel, KeepFor: l.KeepFor}
}

// TestContract runs the contract suite with History as the server allows:
// batched direct gets on nats-server 2.11+, consumers before.
func TestContract(t *testing.T) {
	if s, _ := newStore(t, natsstore.Config{}); !natsstore.DirectHistory(s) {
		t.Log("the server does not batch direct gets (nats-server < 2.11): History reads with consumers")
	}
	contract(t, false)
}

// TestContractConsumerHistory runs the contract suite with History reading
// through consumers, as on servers before 2.11.
func TestContractConsumerHistory(t *testing.T) {
	contract(t, true)
}

func contract(t *testing.T, consumerHistory bool) {
	url := natsURL(t)
	open := func(t *testing.T, url string, cfg natsstore.Config) *natsstore.Store {
		s := open(t, url, cfg)
		if consumerHistory {
			natsstore.UseConsumerHistory(s)
		}
		return s
	}
	var mu sync.Mutex
	streams := map[store.Store]string{}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, l storetest.Limits) store.Store {
			stream := uniqueStream(t)
			deleteStream(t, url, stream)
			s := open(t, url, limitsConfig(stream, l))
			mu.Lock()
			streams[s] = stream
			mu.Unlock()
			return s
		},
		Reopen: func(t *testing.T, s store.Store, l storetest.Limits) store.Store {
			mu.Lock()
			stream := streams[s]
			mu.Unlock()
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s2 := open(t, url, limitsConfig(stream, l))
			mu.Lock()
			streams[s2] = stream
			mu.Unlock()
			return s2
		},
		// MaxMsgs is exact; MaxBytes counts what JetStream stores, not
		// store.EventSize.
		ApproximateBytes: true,
	})
}
