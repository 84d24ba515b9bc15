package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionStamped: the version make dist sets at link time is what
// "sluice version" prints.
func TestVersionStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary: skipped in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".")
	build.Dir = pkgDir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "sluice v9.8.7-test (go") {
		t.Errorf("sluice version printed %q, want the stamped v9.8.7-test", out)
	}
}

func TestVersionCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "sluice ") {
		t.Errorf("version: exit %d, %q %q", code, out.String(), errOut.String())
	}
	if code := run(context.Background(), []string{"version", "extra"}, &out, &errOut); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
}
