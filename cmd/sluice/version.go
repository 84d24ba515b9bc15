package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func init() {
	commands["version"] = command{summary: "print the version of this binary", run: runVersion}
}

// version is the release this binary was built from, set at link time:
// go build -ldflags "-X main.version=$(git describe --tags --always --dirty)"
// (make dist does). Empty in other builds, which report what the Go
// toolchain stamped instead (see versionString).
var version string

// versionString returns the binary's version: the one set at link time,
// else the main module's version the Go toolchain stamped (go install
// module@version, or a build in a git checkout), else its VCS revision, else
// "devel".
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// runVersion is the version command.
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
			fmt.Fprintln(stdout, "usage: sluice version\n\nPrints the version of this binary, the Go version it was built with and its platform.")
			return 0
		}
		fmt.Fprintf(stderr, "sluice version: unexpected argument %q\n", args[0])
		return 2
	}
	fmt.Fprintf(stdout, "sluice %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
