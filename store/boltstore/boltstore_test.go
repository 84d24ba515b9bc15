package boltstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

func config(l storetest.Limits) Config {
	return Config{MaxEvents: l.MaxEvents, MaxBytes: l.MaxBytes, TTL: l.TTL, Now: l.Now,
		KeepPerChannel: l.KeepPerChannel, KeepFor: l.KeepFor}
}

func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, l storetest.Limits) store.Store {
			s, err := Open(filepath.Join(t.TempDir(), "events.db"), config(l))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Reopen: func(t *testing.T, st store.Store, l storetest.Limits) store.Store {
			s := st.(*Store)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2, err := Open(s.Path(), config(l))
			if err != nil {
				t.Fatal(err)
			}
			return s2
		},
	})
}

func mustOpen(t *testing.T, path string, cfg Config) *Store {
	t.Helper()
	s, err := Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestRefusesForeignAndCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{LockTimeout: 100 * time.Millisecond}

	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, bytes.Repeat([]byte("not a database\n"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}

	other := filepath.Join(dir, "other.db")
	db, err := bbolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("users"))
		if err != nil {
			return err
		}
		return b.Put([]byte("alice"), []byte("admin"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// A sluice file of a future format version.
	future := filepath.Join(dir, "future.db")
	s := mustOpen(t, future, cfg)
	if _, err := s.Append(context.Background(), store.Event{Data: "x"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err = bbolt.Open(future, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte("sluice.boltstore/9"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// A sluice file whose two meta pages are overwritten.
	corrupt := filepath.Join(dir, "corrupt.db")
	s = mustOpen(t, corrupt, cfg)
	if _, err := s.Append(context.Background(), store.Event{Data: "x"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, err := os.OpenFile(corrupt, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	for _, off := range []int64{0, int64(page)} {
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 64), off+16); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	for _, c := range []struct{ path, want string }{
		{text, "invalid"},
		{other, "another program"},
		{future, `format "sluice.boltstore/9"`},
		{corrupt, ""},
	} {
		before := fileHash(t, c.path)
		s, err := Open(c.path, cfg)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%s) succeeded; want ErrInvalidFile", c.path)
		}
		t.Logf("refused: %v", err)
		if !errors.Is(err, ErrInvalidFile) || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%s) = %v; want ErrInvalidFile naming the file and %q", c.path, err, c.want)
		}
		if fileHash(t, c.path) != before {
			t.Errorf("Open(%s) modified the file it refused", c.path)
		}
	}

	if _, err := Open(dir, cfg); !errors.Is(err, ErrInvalidFile) {
		t.Errorf("Open(a directory) = %v; want ErrInvalidFile", err)
	}
}

func TestSecondOpenFailsWithErrLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	mustOpen(t, path, Config{})
	type opened struct {
		s   *Store
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := Open(path, Config{LockTimeout: 50 * time.Millisecond})
		done <- opened{s, err}
	}()
	var o opened
	select {
	case o = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a second Open of a locked file waits past its LockTimeout")
	}
	if o.err == nil {
		o.s.Close()
		t.Fatal("a second Open of the same file succeeded")
	}
	if !errors.Is(o.err, ErrLocked) {
		t.Fatalf("second Open = %v; want ErrLocked", o.err)
	}
}

func TestCursorRules(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, filepath.Join(t.TempDir(), "events.db"), Config{MaxEvents: 4})
	var evs []store.Event
	for i := range 10 {
		e, err := s.Append(ctx, store.Event{Data: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	if _, err := s.Append(ctx, store.Event{ID: s.epoch.ID(99)}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("Append(custom id in the store's generated form) = %v; want ErrInvalidEvent", err)
	}
	for _, c := range []struct {
		cursor string
		n      int
		err    error
	}{
		{s.epoch.ID(11), 0, store.ErrUnknownID},
		{store.NewEpoch().ID(5), 0, store.ErrUnknownID},
		{evs[0].ID, 0, store.ErrExpired},
		{evs[4].ID, 0, store.ErrExpired},
		{evs[5].ID, 4, nil}, // newest evicted: nothing after it is missing
		{evs[6].ID, 3, nil},
		{evs[9].ID, 0, nil},
		{"", 4, nil},
	} {
		var n int
		var err error
		for _, e := range s.History(ctx, c.cursor, nil) {
			if e != nil {
				err = e
				continue
			}
			n++
		}
		if n != c.n || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("History(%q) = %d events, %v; want %d, %v", c.cursor, n, err, c.n, c.err)
		}
	}
}

// check verifies the file's structure and that the meta bucket, the events
// and the custom-id index agree, and returns the number of events and of
// custom ids retained.
func check(t *testing.T, s *Store) (events, custom int) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("bbolt check: %w", errors.Join(errs...))
		}
		meta := tx.Bucket(bucketMeta)
		last, _ := u64(meta.Get(keyLast))
		oldest, _ := u64(meta.Get(keyOldest))
		metaBytes, _ := u64(meta.Get(keyBytes))
		var sum uint64
		want := oldest
		customs := map[string]bool{}
		if err := tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			if keyPos(k) != want {
				return fmt.Errorf("event at position %d, want %d", keyPos(k), want)
			}
			n, cid, ok := s.size(v, want)
			if !ok {
				return fmt.Errorf("event %d: corrupt", want)
			}
			if cid != nil {
				customs[string(cid)+"\x00"+string(k)] = true
			}
			sum += uint64(n)
			want++
			events++
			return nil
		}); err != nil {
			return err
		}
		if want != last+1 || sum != metaBytes {
			return fmt.Errorf("meta says [%d, %d] and %d bytes; events end at %d with %d bytes", oldest, last, metaBytes, want-1, sum)
		}
		indexed := 0
		if err := tx.Bucket(bucketIDs).ForEach(func(k, _ []byte) error {
			if !customs[string(k)] {
				return fmt.Errorf("index entry %q for no retained event", k)
			}
			indexed++
			return nil
		}); err != nil {
			return err
		}
		if custom = len(customs); indexed != custom {
			return fmt.Errorf("%d retained custom ids, %d index entries", custom, indexed)
		}
		if s.keeping() {
			return checkKept(tx, s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return events, custom
}

// checkKept verifies that the kept channels' buckets agree with each other
// and with the meta bucket.
func checkKept(tx *bbolt.Tx, s *Store) error {
	meta := tx.Bucket(bucketMeta)
	last, _ := u64(meta.Get(keyLast))
	if kl, ok := u64(meta.Get(keyKeepLast)); !ok || kl != last {
		return fmt.Errorf("keeplast %d, last %d", kl, last)
	}
	floor, ok1 := u64(meta.Get(keyKeepFloor))
	metaBytes, ok2 := u64(meta.Get(keyKeepBytes))
	if !ok1 || !ok2 || floor > last {
		return fmt.Errorf("keep meta: floor %d (%v), bytes %d (%v), last %d", floor, ok1, metaBytes, ok2, last)
	}
	type kept struct {
		n           uint64
		first, last uint64
		oldest      int64
	}
	byChan := map[string]*kept{}
	var sum uint64
	if err := tx.Bucket(bucketKept).ForEach(func(k, v []byte) error {
		n, w := binary.Uvarint(k)
		if w <= 0 || uint64(len(k)) != uint64(w)+n+8 {
			return fmt.Errorf("kept key %q malformed", k)
		}
		name, pos := string(k[w:len(k)-8]), keyPos(k[len(k)-8:])
		size, _, ok := size(v, pos, s.epoch)
		if !ok {
			return fmt.Errorf("kept event %d of %q: corrupt", pos, name)
		}
		e, _, err := decode(v, pos, s.epoch, nil)
		if err != nil || !slices.ContainsFunc(e.Topics, func(tp string) bool { return store.IsChannel(tp) && channelKey(tp) == name }) {
			return fmt.Errorf("kept event %d of %q: topics %q, %v", pos, name, e.Topics, err)
		}
		sum += uint64(size)
		c := byChan[name]
		if c == nil {
			c = &kept{first: pos, oldest: e.Time.UnixNano()}
			byChan[name] = c
		}
		c.n, c.last = c.n+1, pos
		return nil
	}); err != nil {
		return err
	}
	if sum != metaBytes {
		return fmt.Errorf("kept events sum to %d bytes, meta says %d", sum, metaBytes)
	}
	states := 0
	if err := tx.Bucket(bucketKeptChans).ForEach(func(k, v []byte) error {
		states++
		c, ok := parseChanState(v)
		kc := byChan[string(k)]
		if !ok || kc == nil || kc.n != c.count || kc.last != c.last || c.dropped >= kc.first || c.oldest != kc.oldest {
			return fmt.Errorf("channel %q: state %+v (valid %v), kept %+v", k, c, ok, kc)
		}
		if tx.Bucket(bucketKeptLRU).Get(append(posKey(nil, c.last), k...)) == nil {
			return fmt.Errorf("channel %q: not in the lru bucket", k)
		}
		return nil
	}); err != nil {
		return err
	}
	if states != len(byChan) || tx.Bucket(bucketKeptLRU).Stats().KeyN != states {
		return fmt.Errorf("%d channel states, %d channels with kept events, %d lru entries", states, len(byChan), tx.Bucket(bucketKeptLRU).Stats().KeyN)
	}
	return nil
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestRetentionBoundsTheFile appends 15 times the retained count and checks
// that the file stops growing, that the index follows retention, and that a
// lowered limit is applied at Open in several chunks.
func TestRetentionBoundsTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	const keep = 1000
	s := mustOpen(t, path, Config{MaxEvents: keep})
	data := strings.Repeat("d", 200)
	appendN := func(n, from int) {
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for w := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := from + w; i < from+n; i += 32 {
					e := store.Event{Topics: []string{"t"}, Data: data}
					if i%10 == 0 {
						e.ID = fmt.Sprintf("custom-%d", i)
					}
					if _, err := s.Append(ctx, e); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	appendN(5*keep, 0)
	size1 := fileSize(t, path)
	appendN(10*keep, 5*keep)
	size2 := fileSize(t, path)
	if size2 > size1 {
		t.Errorf("file grew from %d to %d bytes after retention was reached", size1, size2)
	}
	t.Logf("file size with %d events of %d bytes retained: %d bytes", keep, len(data), size2)
	if n, custom := check(t, s); n != keep || custom < keep/20 {
		t.Fatalf("%d events and %d custom ids retained; want %d and about %d", n, custom, keep, keep/10)
	}
	// The custom ids of evicted events are gone, those retained resolve.
	var retained []string
	for e, err := range s.History(ctx, "", nil) {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.ID, "custom-") {
			retained = append(retained, e.ID)
		}
	}
	for _, c := range []struct {
		id  string
		err error
	}{{"custom-0", store.ErrUnknownID}, {retained[0], nil}, {retained[len(retained)-1], nil}} {
		var err error
		for _, e := range s.History(ctx, c.id, nil) {
			err = e
		}
		if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("History(%q): %v; want %v", c.id, err, c.err)
		}
	}

	head, _ := s.Head(ctx)
	s.Close()
	s = mustOpen(t, path, Config{MaxEvents: 10})
	if n, _ := check(t, s); n != 10 {
		t.Fatalf("after reopening with MaxEvents 10: %d events", n)
	}
	if h, _ := s.Head(ctx); h != head {
		t.Fatalf("Head after reopen = %q, want %q", h, head)
	}
}

func TestTrimInChunks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s := mustOpen(t, path, Config{MaxBatch: 4096})
	n := trimChunk*2 + 100
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				if _, err := s.Append(ctx, store.Event{Data: "x"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	s = mustOpen(t, path, Config{MaxEvents: 5})
	if got, _ := check(t, s); got != 5 {
		t.Fatalf("after reopening with MaxEvents 5 over %d events: %d retained", n, got)
	}
}

func TestOversizedEvent(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, filepath.Join(t.TempDir(), "events.db"), Config{MaxBytes: 100})
	ok, err := s.Append(ctx, store.Event{Data: "fits"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, store.Event{Data: strings.Repeat("x", 101)}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("Append of an event larger than MaxBytes: %v, want ErrInvalidEvent", err)
	}
	next, err := s.Append(ctx, store.Event{Data: "next"})
	if err != nil || next.Pos != ok.Pos+1 {
		t.Fatalf("Append after a refused one = %+v, %v; want the next position", next, err)
	}
}

// legacyFile makes the file at path what a version before fragment ids
// (store.IDPrefix) left: the same layout, with generated ids counted
// without their "#" in the meta byte count and no record of when "#" began.
func legacyFile(t *testing.T, path string, generated int) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		n, _ := u64(meta.Get(keyBytes))
		if err := meta.Put(keyBytes, posKey(nil, n-uint64(generated*len(store.IDPrefix)))); err != nil {
			return err
		}
		return meta.Delete(keyIDPrefix)
	}); err != nil {
		t.Fatal(err)
	}
}

// A file written before generated ids had their "#" keeps working after the
// upgrade: its cursors, in the legacy form, resume where they did, new ids
// are fragments, and its byte count stays exact as its old events are
// evicted (it counted their ids without the "#").
func TestFileFromBeforeFragmentIDs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	var old []store.Event
	for i := range 6 {
		e := store.Event{Topics: []string{"a"}, Data: fmt.Sprint("old ", i)}
		if i == 2 {
			e.ID = "old-custom"
		}
		old = append(old, storetest.MustAppend(t, s, e))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	legacyFile(t, path, 5)

	s = mustOpen(t, path, Config{MaxEvents: 8})
	check(t, s)
	for i, e := range old {
		cursor := strings.TrimPrefix(e.ID, "#") // as the old version issued it
		got, err := storetest.History(t, s, cursor)
		if err != nil || len(got) != len(old)-i-1 || len(got) > 0 && got[0].ID != old[i+1].ID {
			t.Fatalf("History(legacy cursor %q) = %d events, %v; want the %d after it", cursor, len(got), err, len(old)-i-1)
		}
	}
	var evs []store.Event
	for i := range 10 { // evicts every old event
		evs = append(evs, storetest.MustAppend(t, s, store.Event{Topics: []string{"a"}, Data: fmt.Sprint("new ", i)}))
		check(t, s)
	}
	if head, err := s.Head(ctx); err != nil || head != evs[9].ID || !strings.HasPrefix(head, "#") {
		t.Fatalf("Head = %q, %v; want the last id %q, a fragment", head, err, evs[9].ID)
	}
	if _, err := storetest.History(t, s, strings.TrimPrefix(old[0].ID, "#")); !errors.Is(err, store.ErrExpired) {
		t.Fatalf("History(evicted legacy cursor) = %v, want ErrExpired", err)
	}
}
