package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/cache"
)

// restoreOutput is what restore --json prints.
type restoreOutput struct {
	ID    chunk.ID     `json:"id"`
	Dir   string       `json:"dir"`
	Stats restoreStats `json:"stats"`
}

// restoreStats is repo.RestoreStats plus the store requests it took
// (below the host cache: what the real store served) and the host cache's
// counts (absent with --no-cache).
type restoreStats struct {
	repo.RestoreStats
	Requests map[string]int64 `json:"requests"`
	Cache    *cache.Stats     `json:"cache,omitempty"`
}

func (a *app) restoreCmd() *cobra.Command {
	var (
		asJSON bool
		opts   repo.RestoreOptions
	)
	cmd := &cobra.Command{
		Use:   "restore HANDLE DIR",
		Short: "Bring a snapshot back into a directory",
		Long: `restore makes DIR exactly the snapshot HANDLE names.

A missing or empty DIR is restored beside it and renamed into place at the
end, so a failed or interrupted restore leaves no half-restored DIR.

A non-empty DIR is made identical to the snapshot in place: files it already
holds unchanged are kept, what the snapshot lacks is removed. That is done
only when sandsnap restored or backed up DIR on this host before (its files
cache says so; --no-cache keeps no such record), when DIR holds an unfinished
restore, or with --delete. Until it finishes, DIR holds .sandsnap-restoring:
backup refuses DIR and "sandsnap status DIR" reports it; restore again to
finish.

/ and system directories (/etc, /usr, /var, /boot, /home itself, your home
directory ...) are refused whatever the flags. --dry-run changes nothing and
lists what would be written ("write PATH", "mkdir PATH", "link PATH",
"symlink PATH", "mkfifo PATH") and removed ("remove PATH").`,
		Args: argsNamed("HANDLE", "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			a.useCache = true
			s, err := a.open(ctx, openExisting)
			if err != nil {
				return err
			}
			id, err := s.resolve(ctx, args[0], a.stdin)
			if err != nil {
				return err
			}
			dir, err := filepath.Abs(args[1])
			if err != nil {
				return err
			}
			opts.Progress = new(repo.Progress)
			stop := a.startProgress(opts.Progress, "restore")
			st, err := s.r.Restore(ctx, id, dir, opts)
			stop()
			if err != nil {
				return err
			}
			out := restoreOutput{ID: id, Dir: dir, Stats: restoreStats{RestoreStats: st, Requests: s.requests(), Cache: s.cacheStats()}}
			if asJSON {
				return writeJSON(a.stdout, out)
			}
			return printRestore(a, out)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().BoolVar(&opts.Delete, "delete", false,
		"make a non-empty DIR that sandsnap has no record of identical to the snapshot, removing what the snapshot lacks")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "change nothing: list what would be written and removed")
	return cmd
}

// printRestore prints what a restore did; for a dry run, first one
// "OP PATH" line per action, then what the real run would do.
func printRestore(a *app, out restoreOutput) error {
	st := out.Stats
	head, written, fetched := "restored", "written ", "fetched "
	if st.DryRun {
		var b strings.Builder
		for _, act := range st.Actions {
			fmt.Fprintf(&b, "%s %s\n", act.Op, displayPath(act.Path))
		}
		if _, err := io.WriteString(a.stdout, b.String()); err != nil {
			return err
		}
		head, written, fetched = "dry run (nothing was changed): would restore", "to write", "to fetch"
	}
	_, err := fmt.Fprintf(a.stdout,
		"%s %s into %s\n"+
			"files    %d (%d dirs, %d symlinks, %d other), %s\n"+
			"%s %d files, %s (%d unchanged, %d removed)\n"+
			"%s %s in %d range reads (%d requests in all)\n"+
			"%s"+
			"time     %.2f s\n",
		head, out.ID, out.Dir,
		st.Files, st.Dirs, st.Symlinks, st.Other, formatBytes(st.Bytes),
		written, st.FilesWritten, formatBytes(st.BytesWritten), st.FilesUnchanged, st.Removed,
		fetched, formatBytes(st.BytesFetched), st.PacksFetched,
		st.Requests["get"]+st.Requests["head"]+st.Requests["list"]+st.Requests["put"]+st.Requests["delete"],
		cacheLine(st.Cache), st.Seconds)
	return err
}

// cacheLine is the human output's line about the host cache, or "".
func cacheLine(c *cache.Stats) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("cache    %d hits, %d misses, %d filled (%s)\n", c.Hits, c.Misses, c.Fills, formatBytes(c.BytesFilled))
}
