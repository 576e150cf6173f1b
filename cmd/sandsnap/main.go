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

// run executes one command line and returns the exit status. A failure
// is printed to stderr as one "sandsnap: " line (plus a hint for usage
// errors), or with --json as one JSON object; classify picks its exit
// status and code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	var cmd *cobra.Command
	defer func() {
		// A bug must still end in one error line, not a goroutine dump.
		if p := recover(); p != nil {
			err := fmt.Errorf("internal error: %s", fmt.Sprint(p))
			code = report(stderr, cmd, args, kindInternal, err)
		}
	}()
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	return report(stderr, cmd, args, classify(ctx, err), err)
}

// report prints the failure err of kind k on stderr and returns its exit
// status. A partial result prints nothing without --json: the command's
// output already lists what was skipped.
func report(stderr io.Writer, cmd *cobra.Command, args []string, k kind, err error) int {
	var ue usageError
	switch {
	case wantsJSON(cmd, args):
		writeJSONError(stderr, k, err)
	case k.code == kindPartial.code:
	case k.code == kindInterrupted.code:
		fmt.Fprintf(stderr, "sandsnap: interrupted: %s\n", plainMessage(err))
	default:
		fmt.Fprintf(stderr, "sandsnap: %s\n", plainMessage(err))
		if errors.As(err, &ue) && cmd != nil {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return k.exit
}

// wantsJSON reports whether the command line asked for JSON: the
// command's --json flag, or, when parsing stopped before it (an unknown
// flag or command), a literal --json before "--".
func wantsJSON(cmd *cobra.Command, args []string) bool {
	if cmd != nil {
		if f := cmd.Flags().Lookup("json"); f != nil && f.Changed {
			return f.Value.String() == "true"
		}
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
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
	// json is the global --json, for the commands without a --json of
	// their own (a command's own flag shadows it).
	json bool
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
handle's JSON on stdin), a file holding a handle's JSON, or a snapshot name.

` + exitHelp,
		Version:           version(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		// The root is runnable only to turn a missing or unknown command
		// into a usage error instead of a help page with exit status 0.
		Args: cobra.ArbitraryArgs,
		RunE: func(root *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("missing command")
			}
			if s := root.SuggestionsFor(args[0]); len(s) > 0 {
				return usageErrorf("unknown command %q: did you mean %s?", args[0], strings.Join(s, " or "))
			}
			return usageErrorf("unknown command %q", args[0])
		},
	}
	root.SetVersionTemplate("sandsnap {{.Version}}\n")
	root.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not apply itself
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
	pf.BoolVar(&a.json, "json", false, "print the result as JSON, and a failure as one JSON object on stderr")
	root.AddCommand(a.initCmd(), a.backupCmd(), a.restoreCmd(), a.lsCmd(), a.showCmd(), a.verifyCmd(), a.diffCmd())
	root.AddCommand(a.gcCmd())
	root.AddCommand(a.rmCmd())
	root.AddCommand(a.statusCmd())
	root.AddCommand(a.catCmd())
	for _, c := range root.Commands() {
		if c.Name() == "ls" {
			c.Aliases = append(c.Aliases, "snapshots") // restic's name for it
		}
	}
	return root
}

// version is the module version and the VCS commit the binary was built
// from, as the go command stamped them: "(devel)" for a build in a
// checkout, whose commit then says what it is.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	v := bi.Main.Version
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " with local changes"
			}
		}
	}
	if rev != "" {
		v += fmt.Sprintf(", commit %s (%s)%s", rev, at, modified)
	}
	return v + ", " + bi.GoVersion
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
