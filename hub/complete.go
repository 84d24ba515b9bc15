package hub

import "sync"

// maxCompletions bounds the completed channels a hub remembers. A
// subscription to a channel completed longer ago than the last
// maxCompletions completions is served as an open channel (its replay
// still ends at the completion).
const maxCompletions = 16 << 10

// completions is a bounded set of completed channels, the oldest
// forgotten first. Completions are rare (one per stream): a mutex is
// enough.
type completions struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string // in completion order; next is the oldest once full
	next int
}

// add records that the channels among topics are completed.
func (c *completions) add(topics []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == nil {
		c.set = make(map[string]struct{})
	}
	for _, t := range topics {
		if !isReserved(t) {
			continue
		}
		if _, ok := c.set[t]; ok {
			continue
		}
		if len(c.ring) < maxCompletions {
			c.ring = append(c.ring, t)
		} else {
			delete(c.set, c.ring[c.next])
			c.ring[c.next] = t
			c.next = (c.next + 1) % maxCompletions
		}
		c.set[t] = struct{}{}
	}
}

// any reports whether one of the channels among topics is completed.
func (c *completions) any(topics []string) bool {
	if !hasReserved(topics) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range topics {
		if _, ok := c.set[t]; ok {
			return true
		}
	}
	return false
}
