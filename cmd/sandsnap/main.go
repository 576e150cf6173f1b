package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the command failed (or verify found problems)
	exitUsage = 2 // bad flags or arguments
	// exitPartial: the command finished, but some entries were skipped
	// (unreadable, unsupported, or not restorable as they were); the
	// output lists them. restic uses 3 for the same.
	exitPartial = 3
)

// memoryLimit is the process's soft heap limit unless GOMEMLIMIT says
// otherwise. A backup keeps a few 16 MiB packs live; without a limit the
// GC lets the heap reach twice that before it collects, and a sandbox's
// memory is small. Measured on a 500 MB workspace: peak RSS 250 MB
// without it, 150-160 MB with it, at the same speed.
const memoryLimit = 192 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// Ctrl-C or SIGTERM cancels the context: a backup then stops before
	// it writes its snapshot object, so it commits nothing.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError marks an error in the command line itself (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// errPartial is returned by a command that finished and printed its
// result but skipped some entries: exit status 3, no error line (the
// output already lists what was skipped).
var errPartial = errors.New("some entries were skipped")

// run executes one command line and returns the exit status. Every error
// is printed to stderr as a single "sandsnap: " line.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		// A bug must still end in one error line, not a goroutine dump.
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "sandsnap: internal error: %s\n", oneLine(fmt.Sprint(p)))
			code = exitError
		}
	}()
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ue usageError
	switch {
	case errors.Is(err, errPartial):
		return exitPartial
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "sandsnap: %s\n", oneLine(err.Error()))
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		fmt.Fprintf(stderr, "sandsnap: interrupted: %s\n", oneLine(err.Error()))
		return exitError
	}
	fmt.Fprintf(stderr, "sandsnap: %s\n", oneLine(err.Error()))
	return exitError
}

// oneLine keeps an error message on one line whatever it wraps.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// app holds one invocation's streams and global flags; commands are
// methods on it so that nothing is global.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	repoURL   string
	endpoint  string
	cachePath string // --cache
	noCache   bool   // --no-cache
	cacheSize string // --cache-size
	// compression is init's --compression.
	compression string
	// useCache is set by the commands that move data (backup, restore,
	// diff) before they open the repository. The others do without the
	// host cache: verify must read what the real store holds.
	useCache bool
}

// newRootCmd builds the command tree for one invocation.
func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "sandsnap",
		Short: "Deduplicating snapshots of sandbox working directories",
		Long: `sandsnap backs up a directory into a content-addressed, deduplicating
repository (a local folder, S3 or Cloudflare R2) and restores it by handle.

A HANDLE is a snapshot ID, a unique ID prefix (8+ hex digits), "-" (a
handle's JSON on stdin), a file holding a handle's JSON, or a snapshot name.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		// The root is runnable only to turn a missing or unknown command
		// into a usage error instead of a help page with exit status 0.
		Args: cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("missing command")
			}
			return usageErrorf("unknown command %q", args[0])
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.repoURL, "repo", "",
		"repository: a path, file:///path, s3://BUCKET/PREFIX or r2://ACCOUNT/BUCKET/PREFIX (default $SANDSNAP_REPO)")
	pf.StringVar(&a.endpoint, "endpoint", "", "S3 API endpoint URL, for S3-compatible servers")
	pf.StringVar(&a.cachePath, "cache", "",
		"host cache folder, shared by all repositories and processes (default <user cache dir>/sandsnap)")
	pf.BoolVar(&a.noCache, "no-cache", false, "use no host cache: packs come from the repository every time, and --parent auto finds no parent")
	pf.StringVar(&a.cacheSize, "cache-size", "4GiB", `bound of the host cache's pack copies ("500MB", "4GiB")`)
	root.AddCommand(a.initCmd(), a.backupCmd(), a.restoreCmd(), a.lsCmd(), a.showCmd(), a.verifyCmd(), a.diffCmd())
	root.AddCommand(a.gcCmd())
	root.AddCommand(a.rmCmd())
	root.AddCommand(a.statusCmd())
	return root
}

// argsNamed accepts exactly len(names) arguments and names the missing
// or extra ones in a usage error.
func argsNamed(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usageErrorf("%s: missing %s", cmd.Name(), strings.Join(names[len(args):], " and "))
		case len(args) > len(names):
			return usageErrorf("%s: unexpected argument %q", cmd.Name(), args[len(names)])
		}
		return nil
	}
}
