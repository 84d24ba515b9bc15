package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Development mode's key lives beside the bolt store it serves, so that a
// restarted hub keeps verifying the tokens it handed out (the demo page's,
// the shell's $TOKEN) and "sluice token" run against the same store signs
// tokens the hub accepts. It is read and written only in development mode:
// a hub with a configured key never touches it.

// devKeySuffix names the key file of a bolt store: bolt:./sluice.db keeps
// it in ./sluice.db.dev-key.
const devKeySuffix = ".dev-key"

// devKeyBytes is the size of a generated development key before hex
// encoding; its 64 hex characters are the HMAC secret.
const devKeyBytes = 32

// devKeyPath returns the development key file of a store, or "" for a
// store without a file of its own (memory, redis, nats): development mode
// then generates a key for the run only.
func devKeyPath(storeKind, storePath string) string {
	if storeKind != "bolt" {
		return ""
	}
	return storePath + devKeySuffix
}

// newDevKey returns a fresh random development key.
func newDevKey() string {
	var b [devKeyBytes]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// loadDevKey reads the development key in path. A key shorter than HS256's
// hash is refused (the file was edited); warning is set when other users
// may read the file.
func loadDevKey(path string) (key, warning string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("development key: %w", err)
	}
	key = string(bytes.TrimSpace(b))
	if len(key) < sha256.Size {
		return "", "", fmt.Errorf("development key %s: %d bytes, want at least %d: delete the file and a new key is generated at the next start",
			path, len(key), sha256.Size)
	}
	if fi, err := os.Stat(path); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		warning = fmt.Sprintf("the development key %s is readable by other users (mode %#o): chmod 600 it", path, fi.Mode().Perm())
	}
	return key, warning, nil
}

// loadOrCreateDevKey returns the development key in path, first creating
// the file (mode 0600) with a fresh key when there is none. Two hubs
// starting at once on one store end up with the same key: the file appears
// whole (written aside, then linked into place) or not at all.
func loadOrCreateDevKey(path string) (key, warning string, created bool, err error) {
	key, warning, err = loadDevKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, warning, false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return "", "", false, fmt.Errorf("development key: %w", err)
	}
	defer os.Remove(tmp.Name())
	key = newDevKey()
	_, err = tmp.WriteString(key + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	switch {
	case err == nil:
		return key, "", true, nil
	case errors.Is(err, fs.ErrExist): // another hub was first
		key, warning, err = loadDevKey(path)
		return key, warning, false, err
	}
	return "", "", false, fmt.Errorf("development key: writing %s: %w", path, err)
}
