package repo

import (
	"container/list"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// The backup reaches every entry relative to an open directory
// descriptor: a directory is opened with openat(parent, name,
// O_DIRECTORY|O_NOFOLLOW), its entries are lstat'ed with fstatat, symlinks
// read with readlinkat, files opened by the workers with openat, and
// xattrs read through the open file or directory (or, for an entry
// nobody opens, relative to its directory's descriptor). No call resolves
// more than one name, so a tree deeper than PATH_MAX backs up like any
// other, and an entry swapped for a symlink during the backup is never
// followed out of the tree. Full paths are only for messages.
//
// A directory's descriptor is still needed after its listing: by its
// files queued for the workers and by its subdirectories not yet opened.
// dirRef counts those users and closes the descriptor after the last one.
// So that a deep tree cannot use up the process's descriptors, dirPool
// keeps at most max descriptors open beyond those in use this instant; it
// closes the least recently used one, and the next user reopens it from
// its parent, after checking that the name still leads to the same
// directory (device and inode), as fts(3) does when it climbs back up.

// errDirReplaced: a directory reopened by name is not the one the walk
// listed (renamed or replaced meanwhile).
var errDirReplaced = errors.New("directory replaced during the backup")

// dirRef is one directory of a backup walk.
type dirRef struct {
	parent   *dirRef // nil for the root
	name     string  // its name in parent
	rel      string  // its path below the backup root ("" for the root)
	dev, ino uint64  // as the parent's fstatat saw it: a reopen must find them

	// Guarded by dirPool.mu.
	fd     int           // -1 while closed
	opened bool          // opened before: the next open is a checked reopen
	refs   int           // users to come: its walk, queued files, unopened subdirectories
	pins   int           // users of fd right now
	idle   *list.Element // place in dirPool.idle while open, referenced and unpinned
}

// dirPool holds the open directory descriptors of one backup.
type dirPool struct {
	mu   sync.Mutex
	max  int       // descriptors kept open beyond the pinned ones
	open int       // descriptors open now
	idle list.List // *dirRef that may be closed, least recently used first
}

func newDirPool(max int) *dirPool {
	if max <= 0 {
		max = dirFDBudget()
	}
	return &dirPool{max: max}
}

// dirFDBudget is the default bound of a walk's idle directory
// descriptors: an eighth of RLIMIT_NOFILE (Go raises the soft limit to the
// hard one at start), at most 1024. The rest stays for the files the
// workers read, the store's connections, and whatever else the process
// runs at the same time.
func dirFDBudget() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 64
	}
	return int(min(max(rl.Cur/8, 16), 1024))
}

// root registers the backup root, open as fd. It stays open and pinned
// until closeAll: every reopen climbs at most up to it.
func (p *dirPool) root(fd int) *dirRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open++
	return &dirRef{fd: fd, opened: true, refs: 1, pins: 1}
}

// child returns the subdirectory name of parent, whose fstatat gave st,
// for its walk, which opens it with openNew. It takes over one of the
// references handOff gave parent's subdirectories.
func (p *dirPool) child(parent *dirRef, name, rel string, st *unix.Stat_t) *dirRef {
	return &dirRef{parent: parent, name: name, rel: rel, dev: st.Dev, ino: st.Ino, fd: -1, refs: 1}
}

// handOff ends the walk's pin and reference on d, listed, and gives n
// references to its queued files and unopened subdirectories, in one
// step: a directory costs its walk three lock operations (openNew twice,
// handOff), a file one more than its worker's pin.
func (p *dirPool) handOff(d *dirRef, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d.refs += n
	p.doneLocked(d)
}

// release drops a reference without a pin: a queued file or subdirectory
// that will never open (the backup failed), or the walk of a directory
// that could not be opened.
func (p *dirPool) release(d *dirRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d.refs--
	if d.refs == 0 && d.pins == 0 && d.fd >= 0 {
		p.closeLocked(d)
	}
}

// done ends a pin together with the reference it served; the descriptor
// closes with the last reference.
func (p *dirPool) done(d *dirRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.doneLocked(d)
}

func (p *dirPool) doneLocked(d *dirRef) {
	d.refs--
	p.unpinLocked(d)
}

// openNew opens d, made by child and never opened, for its walk, pinned,
// and ends the parent reference it held, whatever the outcome. No other
// user knows d yet, so openat runs without the lock: every directory of
// the tree passes here, on several walkers at once.
func (p *dirPool) openNew(d *dirRef) (int, error) {
	pfd, err := p.pin(d.parent)
	if err != nil {
		p.release(d.parent)
		return -1, err
	}
	fd, err := openSubdir(pfd, d)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.doneLocked(d.parent)
	if err != nil {
		return -1, err
	}
	p.openedLocked(d, fd)
	return fd, nil
}

// openedLocked records d open as fd, pinned once, and keeps the bound.
func (p *dirPool) openedLocked(d *dirRef, fd int) {
	d.fd, d.opened, d.pins = fd, true, 1
	p.open++
	p.evictLocked()
}

// pin returns d's descriptor, reopening it if it was evicted; it stays
// open until the matching done (or unpinLocked).
func (p *dirPool) pin(d *dirRef) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pinLocked(d)
}

// pinLocked reopens d from its parent, pinned for the call, when d was
// closed by eviction: a chain of closed ancestors reopens from the nearest
// open one. The lock is held across openat, which is rare (only after an
// eviction), and keeps two users from reopening d twice.
func (p *dirPool) pinLocked(d *dirRef) (int, error) {
	if d.fd >= 0 {
		if d.idle != nil {
			p.idle.Remove(d.idle)
			d.idle = nil
		}
		d.pins++
		return d.fd, nil
	}
	if d.parent == nil {
		return -1, errors.New("backup root closed") // only after closeAll
	}
	pfd, err := p.pinLocked(d.parent)
	if err != nil {
		return -1, err
	}
	fd, err := openSubdir(pfd, d)
	p.unpinLocked(d.parent)
	if err != nil {
		return -1, err
	}
	p.openedLocked(d, fd)
	return fd, nil
}

// openSubdir opens d in its parent's descriptor pfd. A reopen must find
// the directory the walk saw, not whatever took its name since.
func openSubdir(pfd int, d *dirRef) (int, error) {
	fd, err := unix.Openat(pfd, d.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open: %w", err)
	}
	if !d.opened {
		return fd, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Dev != d.dev || st.Ino != d.ino {
		unix.Close(fd)
		if err == nil {
			err = errDirReplaced
		}
		return -1, fmt.Errorf("reopen: %w", err)
	}
	return fd, nil
}

func (p *dirPool) unpinLocked(d *dirRef) {
	d.pins--
	if d.pins > 0 {
		return
	}
	if d.refs == 0 {
		p.closeLocked(d)
		return
	}
	d.idle = p.idle.PushBack(d)
	p.evictLocked()
}

// evictLocked closes idle descriptors, least recently used first, while
// more than max are open.
func (p *dirPool) evictLocked() {
	for p.open > p.max {
		e := p.idle.Front()
		if e == nil {
			return // every open descriptor is in use
		}
		p.closeLocked(e.Value.(*dirRef))
	}
}

func (p *dirPool) closeLocked(d *dirRef) {
	if d.idle != nil {
		p.idle.Remove(d.idle)
		d.idle = nil
	}
	unix.Close(d.fd)
	d.fd = -1
	p.open--
}

// closeAll closes the root and every idle descriptor once the walk and
// the workers are done; a failed backup leaves references behind, never
// descriptors.
func (p *dirPool) closeAll(root *dirRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for e := p.idle.Front(); e != nil; e = p.idle.Front() {
		p.closeLocked(e.Value.(*dirRef))
	}
	if root.fd >= 0 {
		p.closeLocked(root)
	}
}
