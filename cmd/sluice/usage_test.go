package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// flagLine is a flag's line in a command's -h: "  --name TYPE [ENV]"
// ("-H" for a one-letter flag).
var flagLine = regexp.MustCompile(`^  (-[A-Za-z]|--[a-z][a-z0-9-]+)( [A-Za-z']+)?( \[(SLUICE_[A-Z0-9_]+)\])?$`)

// TestHelpStyle: every command's -h lists its flags in one style, with
// the environment variable of each flag that reads one, and serve's are
// all read from SLUICE_*.
func TestHelpStyle(t *testing.T) {
	for _, cmd := range []string{"serve", "publish", "token", "listen", "bench"} {
		t.Run(cmd, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(t.Context(), []string{cmd, "-h"}, &out, &errOut); code != 0 {
				t.Fatalf("exit %d", code)
			}
			help := out.String() + errOut.String()
			_, flags, ok := strings.Cut(help, "\nFlags:\n")
			if !ok {
				t.Fatalf("no Flags: section in\n%s", help)
			}
			n := 0
			for line := range strings.SplitSeq(strings.TrimRight(flags, "\n"), "\n") {
				if strings.HasPrefix(line, "    \t") {
					continue // a flag's description
				}
				m := flagLine.FindStringSubmatch(line)
				if m == nil {
					t.Errorf("flag line %q is not in the --flag TYPE [ENV] style", line)
					continue
				}
				n++
				name := strings.TrimLeft(m[1], "-")
				switch env := m[4]; {
				case cmd == "serve" && env != envName(name):
					t.Errorf("--%s shows %q, want [%s]", name, env, envName(name))
				case (cmd == "publish" || cmd == "token") && env != "" && !tokenEnvFlags[name]:
					t.Errorf("--%s shows %s, which it does not read", name, env)
				}
			}
			if n == 0 {
				t.Fatal("no flags listed")
			}
		})
	}
}

// readmeFlag is a flag's row in README.md's table of serve's flags.
type readmeFlag struct {
	env string
	def string // the default column
}

// readmeFlags are the flags of README.md's table of serve's flags, with
// their variables and defaults: its rows start with "| `--flag`".
func readmeFlags(t *testing.T) map[string]readmeFlag {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pkgDir, "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	flagRe, envRe := regexp.MustCompile("`--([a-z0-9-]+)`"), regexp.MustCompile("`(SLUICE_[A-Z0-9_]+)`")
	out := map[string]readmeFlag{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(line, "|")
		flags, envs := flagRe.FindAllStringSubmatch(cells[1], -1), envRe.FindAllStringSubmatch(cells[2], -1)
		for i, f := range flags {
			env := ""
			if i < len(envs) {
				env = envs[i][1]
			}
			out[f[1]] = readmeFlag{env: env, def: strings.TrimSpace(cells[3])}
		}
	}
	return out
}

// TestReadmeFlagTable: README.md's flag table lists every flag of serve,
// with its variable and, where the flag has one, its default, and no
// other flag.
func TestReadmeFlagTable(t *testing.T) {
	documented := readmeFlags(t)
	fs, _ := newServeFlags(&serveConfig{}, io.Discard)
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		names = append(names, f.Name)
		doc, ok := documented[f.Name]
		switch {
		case !ok:
			t.Errorf("--%s is missing from README.md's flag table", f.Name)
		case doc.env != envName(f.Name):
			t.Errorf("README.md gives --%s the variable %q, want %s", f.Name, doc.env, envName(f.Name))
		case !readmeDefault(f, doc.def):
			t.Errorf("README.md gives --%s the default %q, want `%s`", f.Name, doc.def, f.DefValue)
		}
	})
	for name := range documented {
		if !slices.Contains(names, name) {
			t.Errorf("README.md's flag table lists --%s, which serve does not have", name)
		}
	}
}

// readmeDefault reports whether cell, README.md's default of f, is f's:
// its first `value` (a duration as short as "5m"). A flag without a
// default of its own (empty, 0 or false) may say what applies instead
// ("store default", "`HS256`").
func readmeDefault(f *flag.Flag, cell string) bool {
	switch f.DefValue {
	case "", "0", "0s", "false":
		return true
	}
	m := regexp.MustCompile("`([^`]*)`").FindStringSubmatch(cell)
	if m == nil {
		return false
	}
	if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok {
		got, err := time.ParseDuration(m[1])
		return err == nil && got == d
	}
	return m[1] == f.DefValue
}
