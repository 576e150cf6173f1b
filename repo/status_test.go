package repo

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDirStatus: each state of a directory as DirStatus reports it:
// missing, untracked, tracked (and the recorded snapshot's fate), an
// incomplete restore that is running (its lock held) or not, and no cache
// folder.
func TestDirStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, id, _ := smallSnapshot(t, Options{CacheDir: t.TempDir(), Host: "this-host"})
	status := func(dir string) DirStatus {
		t.Helper()
		s, err := r.DirStatus(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if s := status(dst); s.State != DirMissing || s.Record != nil || s.Incomplete != nil || s.Dir != dst {
		t.Errorf("missing directory: %+v", s)
	}
	if s := status(t.TempDir()); s.State != DirUntracked || s.Record != nil || s.NoCache {
		t.Errorf("untracked directory: %+v", s)
	}
	if _, err := r.Restore(ctx, id, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	s := status(dst)
	if s.State != DirTracked || s.Record == nil || s.Record.Snapshot != id || !s.Record.SnapshotExists || s.Record.Files != 3 ||
		time.Since(s.Record.Written) > time.Hour || s.Record.Error != "" {
		t.Errorf("restored directory: %+v, record %+v; want tracked, snapshot %s, 3 files", s, s.Record, id.Str())
	}
	if err := r.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if s := status(dst); s.Record == nil || s.Record.SnapshotExists {
		t.Errorf("after rm of its snapshot: record %+v; want the snapshot gone", s.Record)
	}

	// An incomplete restore: a marker of this host's process, then one
	// from another host; with the lock held, it is running.
	fd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	started := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := writeMarker(fd, restoreMarker{Snapshot: id, Started: started, Host: "this-host", PID: os.Getpid()}); err != nil {
		t.Fatal(err)
	}
	in := status(dst).Incomplete
	if in == nil || in.Snapshot != id || !in.Started.Equal(started) || in.Host != "this-host" || in.PID != os.Getpid() || !in.PIDAlive || in.Running {
		t.Errorf("incomplete: %+v; want snapshot %s, this process alive, not running", in, id.Str())
	}
	if err := writeMarker(fd, restoreMarker{Snapshot: id, Host: "other-host", PID: os.Getpid()}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if s := status(dst); s.State != DirIncomplete || s.Incomplete == nil || s.Incomplete.PIDAlive || !s.Incomplete.Running {
		t.Errorf("incomplete from another host, locked: %+v; want running, PID not judged", s.Incomplete)
	}
	if err := os.WriteFile(filepath.Join(dst, markerName), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := status(dst); s.State != DirIncomplete || s.Incomplete == nil || s.Incomplete.Error == "" {
		t.Errorf("unreadable marker: %+v; want incomplete with an error", s.Incomplete)
	}

	nocache, err := Open(ctx, r.st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := nocache.DirStatus(ctx, dst); err != nil || !s.NoCache || s.Record != nil || s.State != DirIncomplete {
		t.Errorf("without a cache folder: %+v, %v", s, err)
	}
}
