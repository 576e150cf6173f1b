package main

import (
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/cache"
)

// autoParent is the --parent value that asks for the snapshot the
// directory was last restored from or backed up as.
const autoParent = "auto"

// backupOutput is what backup --json prints: the handle, whose stats
// gain the host cache's counts.
type backupOutput struct {
	repo.Handle
	Stats backupStats `json:"stats"`
}

// backupStats is repo.Stats plus the host cache's counts (absent with
// --no-cache).
type backupStats struct {
	repo.Stats
	Cache *cache.Stats `json:"cache,omitempty"`
}

type backupFlags struct {
	name           string
	ttl            string
	parent         string
	excludes       []string
	skipUnreadable bool
	reread         bool
	json           bool
}

func (a *app) backupCmd() *cobra.Command {
	var f backupFlags
	cmd := &cobra.Command{
		Use:   "backup DIR",
		Short: "Snapshot a directory and print its handle",
		Long: `backup snapshots DIR into the repository (creating the repository if there
is none) and prints the new snapshot's handle. Nothing is committed unless
every entry was saved: an interrupted or failed backup leaves no snapshot.`,
		Args: argsNamed("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.backup(cmd, args[0], f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "snapshot name (a handle can be resolved by name)")
	fl.StringVar(&f.ttl, "ttl", "", `time to live ("72h", "7d", "1d12h"); default: never expires`)
	fl.StringVar(&f.parent, "parent", "",
		`HANDLE of an earlier snapshot of DIR: unchanged files are not read again; "auto": the snapshot DIR was last restored from or backed up as, found in the host cache (none if not found)`)
	fl.BoolVar(&f.reread, "reread", false, "read every file, trusting neither the parent nor the host cache")
	fl.StringArrayVar(&f.excludes, "exclude", nil, "leave out entries matching GLOB (repeatable; a GLOB with / matches paths from DIR)")
	fl.BoolVar(&f.skipUnreadable, "skip-unreadable", false, "leave out and report unreadable files and directories instead of failing")
	fl.BoolVar(&f.json, "json", false, "print the handle as JSON")
	return cmd
}

func (a *app) backup(cmd *cobra.Command, dir string, f backupFlags) error {
	ttl, err := parseTTL(f.ttl)
	if err != nil {
		return usageErrorf("--ttl: %v", err)
	}
	if err := manifest.ValidSnapshotName(f.name); err != nil {
		return usageErrorf("--name: %v", err)
	}
	// Check the source before touching the repository, so that a typo
	// does not create an empty repository.
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("backup source: %w", err)
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "backup source", Path: dir, Err: repo.ErrNotDir}
	}
	ctx := cmd.Context()
	a.useCache = true
	s, err := a.open(ctx, openOrInit)
	if err != nil {
		return err
	}
	if s.stack.Created && !f.json { // with --json, stderr is for the error object only
		fmt.Fprintf(a.stderr, "created sandsnap repository %s at %s\n", s.r.Config().ID, s.url)
	}
	opts := repo.BackupOptions{
		Name:           f.name,
		TTL:            ttl,
		Excludes:       f.excludes,
		SkipUnreadable: f.skipUnreadable,
		Reread:         f.reread,
		AutoParent:     f.parent == autoParent,
		Progress:       new(repo.Progress),
	}
	if f.parent != "" && f.parent != autoParent {
		opts.Parent, err = s.resolve(ctx, f.parent, a.stdin)
		if err != nil {
			return fmt.Errorf("--parent: %w", err)
		}
	}
	stop := a.startProgress(opts.Progress, "backup")
	h, err := s.r.Backup(ctx, dir, opts)
	stop()
	if err != nil {
		return err
	}
	h.Stats.Requests = s.requests()
	out := backupOutput{Handle: h, Stats: backupStats{Stats: h.Stats, Cache: s.cacheStats()}}
	if f.json {
		err = writeJSON(a.stdout, out)
	} else {
		err = printBackup(a, out)
	}
	if err == nil {
		err = partial(h.Stats.Skipped)
	}
	return err
}

func printBackup(a *app, out backupOutput) error {
	h, st := out.Handle, out.Stats
	var b strings.Builder
	fmt.Fprintf(&b, "snapshot %s\n", h.ID)
	if h.Name != "" {
		fmt.Fprintf(&b, "name     %s\n", h.Name)
	}
	fmt.Fprintf(&b, "files    %d (%d dirs, %d symlinks, %d other), %s\n", st.Files, st.Dirs, st.Symlinks, st.Other, formatBytes(st.Bytes))
	fmt.Fprintf(&b, "read     %d files, %s (%d files unchanged)\n", st.FilesRead, formatBytes(st.BytesRead), st.FilesReused)
	fmt.Fprintf(&b, "new      %d blobs, %s\n", st.BlobsNew, formatBytes(st.BytesNew))
	fmt.Fprintf(&b, "uploaded %d packs, %s in %d requests\n", st.PacksUploaded, formatBytes(st.BytesUploaded),
		st.Requests["put"]+st.Requests["get"]+st.Requests["head"]+st.Requests["list"]+st.Requests["delete"])
	if h.Parent != nil {
		fmt.Fprintf(&b, "parent   %s\n", *h.Parent)
	}
	b.WriteString(cacheLine(st.Cache))
	if h.Expires != nil {
		fmt.Fprintf(&b, "expires  %s\n", formatTime(*h.Expires))
	}
	for _, p := range st.Skipped {
		fmt.Fprintf(&b, "skipped  %s\n", p)
	}
	fmt.Fprintf(&b, "time     %.2f s\n", st.Seconds)
	_, err := a.stdout.Write([]byte(b.String()))
	return err
}

// parseTTL parses a time.ParseDuration string, optionally led by a whole
// number of days ("7d", "1d12h"). "" is no expiry.
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	var days time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		days, rest = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var d time.Duration
	if rest != "" {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
	}
	if d < 0 || days+d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return days + d, nil
}
