package repo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
)

// The incomplete marker. A restore in place (into a directory that
// already has entries, or one that cannot be staged beside its parent)
// writes DIR/.sandsnap-restoring before its first change and removes it
// after its last metadata step, so that a restore that fails, is
// cancelled or is killed leaves a directory that says so: Backup refuses
// it (ErrIncomplete), DirStatus reports it, and the next restore into it
// may make it identical without Delete (and rewrites changed files
// instead of writing beside them: see restorer.rewrite). A snapshot whose
// root holds that name is refused (ErrUnsafePath).
const markerName = ".sandsnap-restoring"

// maxMarker bounds what reading a marker may allocate.
const maxMarker = 64 << 10

// restoreMarker is the marker's content.
type restoreMarker struct {
	Snapshot chunk.ID  `json:"snapshot"`
	Started  time.Time `json:"started"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
}

// readMarker returns the marker in dir, or nil if it holds none. A marker
// that cannot be parsed is returned empty, with the error.
func readMarker(dir string) (*restoreMarker, error) {
	fd, err := unix.Open(filepath.Join(dir, markerName), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil, nil
	}
	if err != nil {
		// A name that is there but not a readable file (a symlink, a
		// directory) still marks the directory.
		return &restoreMarker{}, fmt.Errorf("incomplete-restore marker %s: %w", filepath.Join(dir, markerName), err)
	}
	f := os.NewFile(uintptr(fd), markerName)
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMarker))
	m := &restoreMarker{}
	if err == nil {
		err = json.Unmarshal(data, m)
	}
	if err != nil {
		return &restoreMarker{}, fmt.Errorf("incomplete-restore marker %s: %w", filepath.Join(dir, markerName), err)
	}
	return m, nil
}

// writeMarker writes m into the directory open as dirfd, replacing an
// earlier one atomically, and makes it durable: a crash right after the
// restore's first change must still find it.
func writeMarker(dirfd int, m restoreMarker) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := markerName + "." + tempName()
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", markerName, err)
	}
	err = pwriteAll(fd, append(data, '\n'), 0)
	if err == nil {
		err = unix.Fsync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dirfd, tmp, dirfd, markerName)
	}
	if err == nil {
		err = unix.Fsync(dirfd)
	}
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return fmt.Errorf("write %s: %w", markerName, err)
	}
	return nil
}

// removeMarker removes the marker from the directory open as dirfd.
func removeMarker(dirfd int) error {
	if err := unix.Unlinkat(dirfd, markerName, 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("remove %s: %w", markerName, err)
	}
	return nil
}

// checkNoMarker returns ErrIncomplete if dir holds an unfinished
// restore's marker: its contents are neither what it held nor the
// snapshot, and a backup of it would commit that mix.
func checkNoMarker(dir string) error {
	m, err := readMarker(dir)
	if m == nil {
		return nil
	}
	what := "an unreadable marker"
	if err == nil {
		what = fmt.Sprintf("snapshot %s, started %s on %s", m.Snapshot, m.Started.UTC().Format(time.RFC3339), m.Host)
	}
	return fmt.Errorf("%w: %s was being restored (%s) and the restore did not finish; restore it again to finish, or remove %s to keep it as it is",
		ErrIncomplete, dir, what, filepath.Join(dir, markerName))
}

// pidAlive reports whether a process with that ID exists on this host
// (in this PID namespace).
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
