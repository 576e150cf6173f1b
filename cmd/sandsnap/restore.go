package main

import (
	"fmt"
	"path/filepath"

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
	var asJSON, untrusted bool
	cmd := &cobra.Command{
		Use:   "restore HANDLE DIR",
		Short: "Bring a snapshot back into a directory",
		Long: `restore makes DIR exactly the snapshot HANDLE names, creating DIR if needed.
Files DIR already holds unchanged are kept; what the snapshot lacks is removed.
What the restore leaves out (an xattr the filesystem refuses; with --untrusted,
setuid bits, owners and non-user xattrs) is listed as skipped, exit status 3.`,
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
			opts := repo.RestoreOptions{Progress: new(repo.Progress), Untrusted: untrusted}
			stop := a.startProgress(opts.Progress, "restore")
			st, err := s.r.Restore(ctx, id, dir, opts)
			stop()
			if err != nil {
				return err
			}
			out := restoreOutput{ID: id, Dir: dir, Stats: restoreStats{RestoreStats: st, Requests: s.requests(), Cache: s.cacheStats()}}
			if asJSON {
				err = writeJSON(a.stdout, out)
			} else {
				err = printRestore(a, out)
			}
			if err == nil {
				err = partial(st.Skipped)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().BoolVar(&untrusted, "untrusted", false,
		"restore content nobody vouches for: no setuid/setgid bits, no xattrs outside user.*, every entry owned by you")
	return cmd
}

func printRestore(a *app, out restoreOutput) error {
	st := out.Stats
	_, err := fmt.Fprintf(a.stdout,
		"restored %s into %s\n"+
			"files    %d (%d dirs, %d symlinks, %d other), %s\n"+
			"written  %d files, %s (%d unchanged, %d removed)\n"+
			"fetched  %s in %d range reads (%d requests in all)\n"+
			"%s"+
			"time     %.2f s\n",
		out.ID, out.Dir,
		st.Files, st.Dirs, st.Symlinks, st.Other, formatBytes(st.Bytes),
		st.FilesWritten, formatBytes(st.BytesWritten), st.FilesUnchanged, st.Removed,
		formatBytes(st.BytesFetched), st.PacksFetched,
		st.Requests["get"]+st.Requests["head"]+st.Requests["list"]+st.Requests["put"]+st.Requests["delete"],
		cacheLine(st.Cache), st.Seconds)
	for _, p := range st.Skipped {
		if err == nil {
			_, err = fmt.Fprintf(a.stdout, "skipped  %s\n", p)
		}
	}
	return err
}

// cacheLine is the human output's line about the host cache, or "".
func cacheLine(c *cache.Stats) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("cache    %d hits, %d misses, %d filled (%s)\n", c.Hits, c.Misses, c.Fills, formatBytes(c.BytesFilled))
}
