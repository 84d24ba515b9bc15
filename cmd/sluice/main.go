// Command sluice is the sluice binary: one subcommand per job.
//
//	sluice serve [flags]         run the hub (see "sluice serve -h")
//	sluice publish [flags]       publish one event to a hub and print its id
//	sluice token [flags]         print a development JWT for given topics
//	sluice listen [flags] URL    connect to an event stream and print its events
//	sluice bench [flags]         load-test a hub
//	sluice version               print the version of this binary
//
// Run "sluice COMMAND -h" for a command's flags. Exit status: 0 on success,
// 1 when the command failed, 2 for a usage error.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// command is one subcommand. Each lives in its own file and registers itself
// in commands from an init function.
type command struct {
	// summary is the one line shown in the usage text.
	summary string
	// run executes the command with its arguments (the command name
	// excluded) and returns the exit status.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands holds the subcommands by name.
var commands = map[string]command{}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "sluice: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sluice COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "\nRun 'sluice COMMAND -h' for a command's flags.")
}
