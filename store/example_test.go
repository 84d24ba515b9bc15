package store_test

import (
	"context"
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
