package repo

import (
	"context"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/manifest"
)

// Hard links. Every name of a hard-linked inode is one node in its tree,
// all with the same LinkID, and a restore refuses a link group whose nodes
// disagree (content, size, mode, owner, mtime, xattrs): it cannot give one
// inode two contents. So a backup decides each inode once. The first name
// the walk meets decides: taken over from the parent snapshot, or read by
// a worker; every other name copies that node, whatever its own lstat or
// the moment a worker reaches it says. A file that changes between two of
// its names' lstats is then snapshotted as one version, and the inode is
// read once however many names it has.

// linkKey names an inode within the backup.
type linkKey struct {
	dev, ino uint64
}

// linkGroup is what the names of one inode share.
type linkGroup struct {
	mu      sync.Mutex // guards the fields below; held while the first name decides
	decided bool       // the first name has been taken over or queued
	reused  bool       // taken over from the parent: node is final
	reading bool       // a worker has started reading it
	node    manifest.Node
	done    chan struct{} // closed when the reading worker has finished
	err     error         // the reading worker's failure, once done
	// st is the walk's stat of the name that decided (taken over) or was
	// read, and stable whether the file stayed so while it was read: a
	// further name with the same stat may then go into the files cache.
	st     unix.Stat_t
	stable bool
}

// linkGroup returns the group of the inode st describes, locked: the
// caller decides it (decided false) or follows it.
func (b *backup) linkGroup(st *unix.Stat_t) *linkGroup {
	k := linkKey{dev: st.Dev, ino: st.Ino}
	b.mu.Lock()
	if b.links == nil {
		b.links = make(map[linkKey]*linkGroup)
	}
	g, ok := b.links[k]
	if !ok {
		g = &linkGroup{done: make(chan struct{})}
		b.links[k] = g
	}
	b.mu.Unlock()
	g.mu.Lock()
	return g
}

// copyInode gives n, one name of an inode, the inode's node as its group
// decided it. The name stays n's own.
func copyInode(n *manifest.Node, inode *manifest.Node) {
	name := n.Name
	*n = *inode
	n.Name = name
}

// saveLinked reads a job's file unless another worker is reading or has
// read the same inode, in which case it waits for that read and copies
// its node. The first worker to reach any name of the inode reads it, so
// a waiting worker always waits for a read that is running, never for a
// job still queued behind it.
func (w *fileWorker) saveLinked(ctx context.Context, job *fileJob) error {
	g := job.group
	g.mu.Lock()
	if !g.reading {
		g.reading = true
		g.mu.Unlock()
		err := w.saveFile(ctx, job)
		g.node, g.err, g.st, g.stable = *job.node, err, *job.st, job.stable
		close(g.done)
		return err
	}
	g.mu.Unlock()
	w.b.pool.release(job.dir) // this name is not opened
	select {
	case <-g.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if g.err != nil {
		return g.err
	}
	// The walk counted this name's size from its own lstat; the inode's
	// read counts.
	w.b.bytes.Add(g.node.Size - uint64(job.st.Size))
	copyInode(job.node, &g.node)
	if g.stable && sameStat(job.st, &g.st) {
		w.b.remember(job.rel, job.st, job.node)
	}
	w.b.progress(int64(g.node.Size))
	return nil
}

// sameStat reports whether two lstats of one inode saw the same version.
func sameStat(a, b *unix.Stat_t) bool {
	return a.Ino == b.Ino && a.Dev == b.Dev && a.Size == b.Size && a.Mtim == b.Mtim && a.Ctim == b.Ctim
}
