package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
)

// DirState says, in one word, what sandsnap knows of a directory on this
// host.
type DirState string

// The states of a directory, most pressing first: DirStatus.State is the
// first that applies.
const (
	// DirMissing: there is no directory by that name.
	DirMissing DirState = "missing"
	// DirIncomplete: it holds the marker of a restore that did not
	// finish (or is running now): its contents are neither what it held
	// before nor the snapshot's.
	DirIncomplete DirState = "incomplete"
	// DirTracked: sandsnap restored it or backed it up on this host; its
	// files cache names the snapshot.
	DirTracked DirState = "tracked"
	// DirUntracked: no record (or no cache folder to keep one in).
	DirUntracked DirState = "untracked"
)

// DirStatus is what sandsnap knows of one directory on this host. Each
// source of knowledge has a field of its own, nil when it knows nothing,
// so that a new one (a lazy fork's mount and overlay) adds a field and a
// state without changing the others.
type DirStatus struct {
	Dir   string   `json:"dir"` // absolute
	State DirState `json:"state"`
	// Record is the directory's files-cache record, nil without one.
	Record *DirRecord `json:"record,omitempty"`
	// Incomplete is the marker of an unfinished restore, nil without one.
	Incomplete *IncompleteRestore `json:"incomplete,omitempty"`
	// NoCache: the repository was opened without a cache folder, so no
	// record can exist.
	NoCache bool `json:"no_cache,omitempty"`
}

// DirRecord is a directory's files-cache record: the snapshot it was last
// restored from or backed up as, on this host.
type DirRecord struct {
	Snapshot chunk.ID `json:"snapshot"`
	// SnapshotExists: the repository still holds that snapshot; Expired:
	// its TTL has passed (gc will remove it).
	SnapshotExists bool `json:"snapshot_exists"`
	Expired        bool `json:"expired,omitempty"`
	// Files counts the regular files recorded.
	Files int `json:"files"`
	// Written is when the record was written (the end of that restore or
	// backup), by this host's clock.
	Written time.Time `json:"written"`
	// Path is the cache file.
	Path string `json:"path"`
	// Error says why the record could not be read; the rest is then
	// empty.
	Error string `json:"error,omitempty"`
}

// IncompleteRestore is an unfinished restore's marker.
type IncompleteRestore struct {
	Snapshot chunk.ID  `json:"snapshot"`
	Started  time.Time `json:"started"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	// Running: a restore holds the directory's lock now.
	Running bool `json:"running"`
	// PIDAlive: Host is this host and a process with that ID exists (a
	// reused ID makes it true for another program; Running does not
	// err that way).
	PIDAlive bool `json:"pid_alive"`
	// Error says why the marker could not be read; the rest is then
	// empty.
	Error string `json:"error,omitempty"`
}

// DirStatus reports what sandsnap knows of dir on this host: its
// files-cache record (and whether that snapshot still exists) and an
// unfinished restore's marker. It changes nothing. Errors are those of
// reading the repository (the snapshot's existence) or of a dir that
// cannot be examined.
func (r *Repository) DirStatus(ctx context.Context, dir string) (DirStatus, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return DirStatus{}, fmt.Errorf("repo: status of %s: %w", dir, err)
	}
	s := DirStatus{Dir: abs, State: DirUntracked, NoCache: r.opts.CacheDir == ""}
	resolved, err := resolveTarget(abs)
	if err != nil {
		return DirStatus{}, fmt.Errorf("repo: status of %s: %w", dir, err)
	}
	if s.Record, err = r.dirRecord(ctx, abs, resolved); err != nil {
		return DirStatus{}, err
	}
	if s.Record != nil {
		s.State = DirTracked
	}
	fi, err := os.Stat(resolved)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.State = DirMissing
		return s, nil
	case err != nil:
		return DirStatus{}, fmt.Errorf("repo: status of %s: %w", dir, err)
	case !fi.IsDir():
		return DirStatus{}, fmt.Errorf("repo: status of %s: %w", dir, ErrNotDir)
	}
	if s.Incomplete = r.incomplete(resolved); s.Incomplete != nil {
		s.State = DirIncomplete
	}
	return s, nil
}

// dirRecord returns the files-cache record kept under the first of names
// that has one, or nil.
func (r *Repository) dirRecord(ctx context.Context, names ...string) (*DirRecord, error) {
	for _, n := range names {
		p := r.filesCachePath(n)
		if p == "" {
			return nil, nil
		}
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		rec := &DirRecord{Path: p, Written: fi.ModTime()}
		fc := r.loadFilesCache(n)
		if fc == nil {
			rec.Error = "unreadable files cache (the next backup or restore rewrites it)"
			return rec, nil
		}
		rec.Snapshot, rec.Files = fc.Snapshot, len(fc.Files)
		h, err := r.Handle(ctx, fc.Snapshot)
		switch {
		case err == nil:
			rec.SnapshotExists, rec.Expired = true, h.Expired
		case !errors.Is(err, ErrSnapshotNotFound):
			return nil, fmt.Errorf("repo: status: snapshot %s: %w", fc.Snapshot.Str(), err)
		}
		return rec, nil
	}
	return nil, nil
}

// incomplete returns the marker in dir as a report, or nil.
func (r *Repository) incomplete(dir string) *IncompleteRestore {
	m, err := readMarker(dir)
	if m == nil {
		return nil
	}
	in := &IncompleteRestore{Snapshot: m.Snapshot, Started: m.Started, Host: m.Host, PID: m.PID, Running: dirLocked(dir)}
	if err != nil {
		in.Error = err.Error()
	}
	in.PIDAlive = m.Host == r.opts.Host && pidAlive(m.PID)
	return in
}

// dirLocked reports whether a restore in place holds dir's lock.
func dirLocked(dir string) bool {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB) == unix.EWOULDBLOCK
}
