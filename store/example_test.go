package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sluicehq/sluice/store"
)

func ExampleMemory() {
	ctx := context.Background()
	s := store.NewMemory(store.MemoryConfig{MaxEvents: 1000})
	defer s.Close()

	for _, d := range []string{"one", "two", "three"} {
		if _, err := s.Append(ctx, store.Event{Topics: []string{"news"}, Data: d}); err != nil {
			fmt.Println(err)
			return
		}
	}
	e, _ := s.Append(ctx, store.Event{ID: "order-42", Topics: []string{"orders"}, Data: "shipped"})
	fmt.Println("custom id:", e.ID)

	// A client that saw nothing replays everything on "news".
	news := func(e *store.Event) bool { return slices.Contains(e.Topics, "news") }
	for e, err := range s.History(ctx, "", news) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.Data)
	}
	// A client that saw "order-42" is told nothing new happened since.
	n := 0
	for range s.History(ctx, "order-42", nil) {
		n++
	}
	fmt.Println("after order-42:", n)
	// Output:
	// custom id: order-42
	// one
	// two
	// three
	// after order-42: 0
}

// A channel keeps its own backlog: the log retains 3 events, yet the
// sends to a session survive a burst of other traffic.
func ExampleKeeper() {
	ctx := context.Background()
	s := store.NewMemory(store.MemoryConfig{MaxEvents: 3})
	defer s.Close()
	away, _ := s.Append(ctx, store.Event{Topics: []string{"news"}, Data: "before"})
	for _, d := range []string{"your order shipped", "your invoice"} {
		s.Append(ctx, store.Event{Topics: []string{"sluice:session:ada"}, Data: d})
	}
	for range 10 {
		s.Append(ctx, store.Event{Topics: []string{"news"}, Data: "noise"})
	}
	for _, err := range s.History(ctx, away.ID, nil) {
		fmt.Println("the log has expired the cursor:", errors.Is(err, store.ErrExpired))
		break
	}
	for e, err := range s.Kept(ctx, "sluice:session:ada", away.ID) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("kept:", e.Data)
	}
	// Output:
	// the log has expired the cursor: true
	// kept: your order shipped
	// kept: your invoice
}
