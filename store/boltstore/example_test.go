package boltstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/boltstore"
)

func Example() {
	dir, _ := os.MkdirTemp("", "sluice")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "events.db")
	ctx := context.Background()

	s, err := boltstore.Open(path, boltstore.Config{MaxEvents: 100_000})
	if err != nil {
		fmt.Println(err)
		return
	}
	first, _ := s.Append(ctx, store.Event{Topics: []string{"news"}, Data: "one"})
	if _, err := s.Append(ctx, store.Event{Topics: []string{"news"}, Data: "two"}); err != nil {
		fmt.Println(err)
		return
	}
	s.Close()

	// After a restart (or a crash), ids issued before still work as cursors.
	s, err = boltstore.Open(path, boltstore.Config{MaxEvents: 100_000})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	for e, err := range s.History(ctx, first.ID, nil) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.Data)
	}
	// Output: two
}
