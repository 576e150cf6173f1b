package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"

	"github.com/sandsnap/sandsnap/internal/benchrun"
)

// memoryLimit is the soft heap limit that cmd/sandsnap sets unless
// GOMEMLIMIT says otherwise; snapbench sets the same so that the peak RSS
// it measures in process is what the CLI would show.
const memoryLimit = 192 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "snapbench:", err)
		if errors.Is(err, benchrun.ErrConfig) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// options are the flags that are not part of benchrun.Config.
type options struct {
	full, quick, json, quiet bool
	report                   string
}

func parseFlags(args []string, stderr io.Writer) (benchrun.Config, options, error) {
	var c benchrun.Config
	var o options
	fs := flag.NewFlagSet("snapbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.quick, "quick", false, "quick run: workspace at scale 0.1 (~3k files, ~35 MB), fork-4 (the default)")
	fs.BoolVar(&o.full, "full", false, "full run: workspace at scale 1.1 (>= 30k files, >= 300 MB), fork-8")
	fs.StringVar(&c.Workload, "workload", "", "workload kind: node, repo, workspace, db or bigfile (default workspace)")
	fs.Float64Var(&c.Scale, "scale", 0, "workload scale (1 = bench's full default size)")
	fs.IntVar(&c.Files, "files", 0, "file count of the workload (overrides what --scale gives)")
	fs.Uint64Var(&c.Seed, "seed", 1, "workload seed")
	fs.StringVar(&c.Dir, "dir", "", "measure this directory instead of a generated workload (never modified: mutations go to a copy)")
	fs.BoolVar(&c.NPM, "npm", false, "build the node workload with a real npm install (falls back to the generated one)")
	fs.StringVar(&c.Repo, "repo", "", "repository location (path, s3://BUCKET/PREFIX, r2://ACCOUNT/BUCKET/PREFIX); default a temporary local folder")
	fs.StringVar(&c.Restic, "restic", "", `restic binary (default: restic on PATH; "off" skips it)`)
	fs.BoolVar(&c.NoCache, "no-cache", false, "no host cache folder: no files cache and no fork via host cache")
	fs.IntVar(&c.Forks, "forks", 0, "N of the fork-N scenarios (default 4, or 8 with --full)")
	fs.StringVar(&c.WorkDir, "workdir", "", "where the temporary directory goes (default $TMPDIR)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the temporary directory and repository")
	fs.BoolVar(&o.json, "json", false, "print one JSON object instead of the table")
	fs.StringVar(&o.report, "report", "", "write REPORT.md and SVG charts into `DIR`")
	fs.BoolVar(&o.quiet, "quiet", false, "print no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return c, o, err
	}
	if fs.NArg() > 0 {
		return c, o, fmt.Errorf("%w: unexpected arguments %q", benchrun.ErrConfig, fs.Args())
	}
	var err error
	c.Preset, err = preset(fs, o)
	return c, o, err
}

// preset picks quick, full or custom: size flags without --full make a
// custom run sized by them.
func preset(fs *flag.FlagSet, o options) (string, error) {
	if o.full && o.quick {
		return "", fmt.Errorf("%w: --quick and --full exclude each other", benchrun.ErrConfig)
	}
	if o.full {
		return benchrun.PresetFull, nil
	}
	sized := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "scale", "files", "workload":
			sized = true
		}
	})
	if sized && !o.quick {
		return benchrun.PresetCustom, nil
	}
	return benchrun.PresetQuick, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "snapbench: "+format+"\n", a...) }
	if o.quiet {
		logf = nil
	}
	rep, err := benchrun.Run(ctx, cfg, logf)
	if err != nil {
		return err
	}
	rep.Command = strings.Join(append([]string{"snapbench"}, args...), " ")
	if o.report != "" {
		if err := rep.WriteDir(o.report); err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	_, err = io.WriteString(stdout, rep.Text())
	return err
}
