package natsstore

import "time"

// UseConsumerHistory makes s's History read with ephemeral consumers, as on
// servers before 2.11, wherever the server could batch direct gets. Call it
// before using s.
func UseConsumerHistory(s *Store) { s.consumerHistory = true }

// DirectHistory reports whether s's History reads with batched direct gets.
func DirectHistory(s *Store) bool { return s.directBatch() }

// PublishesDone returns a channel closed once s has no publish awaiting its
// acknowledgement.
func PublishesDone(s *Store) <-chan struct{} { return s.js.PublishAsyncComplete() }

// SetStallCheck makes s's Follow check its consumer after d without a
// message instead of followStallCheck. Call it before using s.
func SetStallCheck(s *Store, d time.Duration) { s.stallCheck = d }

// SetBeforeCopies makes f run in s's Appends of events of channels once
// the log has acknowledged them, before their kept copies are written;
// when f returns false the copies are not written, as if the store died
// there. Call it before using s.
func SetBeforeCopies(s *Store, f func() bool) { s.beforeCopies = f }

// SetKeptWaiting makes f run when s's Kept waits for the copies of
// appends in progress. Call it before using s.
func SetKeptWaiting(s *Store, f func()) { s.keptWaiting = f }

// KeptGrace returns how long an intent of s may wait for its copy.
func KeptGrace(s *Store) time.Duration { return s.keptGrace }

// SetKeptGrace sets how long an intent of s may wait for its copy. Call it
// before using s.
func SetKeptGrace(s *Store, d time.Duration) { s.keptGrace = d }
