package mercure

import (
	"container/list"
	"sync"
)

// lru is a cache bounded in bytes: each entry is added with its size, and
// the least recently used entries are evicted while the total is over the
// budget. An entry larger than the whole budget is not kept. It is safe for
// concurrent use.
type lru[K comparable, V any] struct {
	budget int64

	mu    sync.Mutex
	bytes int64
	ll    list.List // of *lruEntry[K, V], most recent first
	m     map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	size int64
}

func newLRU[K comparable, V any](budget int64) *lru[K, V] {
	return &lru[K, V]{budget: budget, m: make(map[K]*list.Element)}
}

// get returns the value cached for k and marks it recently used.
func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// add caches v for k with its size and returns the value cached for k: v,
// or the value another goroutine added first.
func (c *lru[K, V]) add(k K, v V, size int64) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val
	}
	if size > c.budget {
		return v
	}
	c.m[k] = c.ll.PushFront(&lruEntry[K, V]{key: k, val: v, size: size})
	c.bytes += size
	for c.bytes > c.budget {
		last := c.ll.Back()
		ent := last.Value.(*lruEntry[K, V])
		c.ll.Remove(last)
		delete(c.m, ent.key)
		c.bytes -= ent.size
	}
	return v
}

// stats returns the number of entries and their total size.
func (c *lru[K, V]) stats() (n int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len(), c.bytes
}
