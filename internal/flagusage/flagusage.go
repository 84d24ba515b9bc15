// Package flagusage prints a flag set's flags the one way every sluice
// command's -h shows them:
//
//	--name TYPE [SLUICE_NAME]
//	    	what it does (default value)
//
// with the environment variable in brackets for the flags that read one
// (one-letter flags get one dash: -H).
package flagusage

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Print writes the flags of fs to w, in name order. env returns the
// environment variable a flag is read from, or "" for none; a nil env
// means none at all.
func Print(w io.Writer, fs *flag.FlagSet, env func(name string) string) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		var b strings.Builder
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-" // -H, as curl spells it
		}
		b.WriteString("  " + dash + f.Name)
		if typ != "" {
			b.WriteString(" " + typ)
		}
		if env != nil {
			if v := env(f.Name); v != "" {
				b.WriteString(" [" + v + "]")
			}
		}
		b.WriteString("\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t"))
		if !zeroDefault(f.DefValue) {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w, b.String())
	})
}

// zeroDefault reports whether a flag's default is not worth showing.
func zeroDefault(v string) bool {
	switch v {
	case "", "false", "0", "0s", "[]":
		return true
	}
	return false
}
