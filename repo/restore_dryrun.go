package repo

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/manifest"
)

// Action is one thing a restore does to its target, as a dry run lists
// it.
type Action struct {
	Op   string `json:"op"`   // one of the Op constants
	Path string `json:"path"` // slash-separated, below the target; "." is the target
}

// The operations of an Action.
const (
	// OpRemove: an entry the snapshot lacks, or one of another type (or
	// another symlink target) than the snapshot's, removed with
	// everything below it (RestoreStats.Removed counts those too).
	OpRemove = "remove"
	OpMkdir  = "mkdir"
	// OpWrite: a regular file written, new or with other content.
	OpWrite = "write"
	// OpLink: a further name of a hard-linked file, linked to the first.
	OpLink    = "link"
	OpSymlink = "symlink"
	OpMkfifo  = "mkfifo"
)

// String is the Action as the CLI prints it: "write a/b.txt".
func (a Action) String() string { return a.Op + " " + a.Path }

// A dry run walks the plan as the structure and link passes would, but
// read-only: it lists each directory (removals), lstats each name, and
// asks restorer.unchanged, the real run's own test, whether an existing
// file is kept. Directories that a real run would create are marked
// fresh, so nothing below them is looked up. It never creates, writes,
// chmods or removes anything, so an unreadable directory (which a real
// run by its owner would chmod first) fails it.
//
// The lists and counts match a real run started from the same state,
// except where a real run's order is not fixed: names removed in one
// directory can lower the link count of a file that another directory,
// checked earlier or later on another goroutine, holds.
type dryRun struct {
	x       *restorer
	actions []Action
	// kept is the inode of each hard-link leader found unchanged.
	kept map[*rfile]fileID
	// followers are the further names of hard-linked files as found.
	followers map[*rfile]found
	// gone counts, per inode, the names that removals take away, so that
	// a later unchanged check sees the link count a real run would.
	gone map[fileID]uint64
}

// fileID names an inode.
type fileID struct{ dev, ino uint64 }

// found is what a hard link's further name holds now.
type found struct {
	exists  bool
	id      fileID
	removes uint64 // entries removing it would remove
}

// dryRun fills x's stats and actions with what restoring into tgt would do.
func (x *restorer) dryRun(ctx context.Context, tgt *restoreTarget) error {
	dr := &dryRun{x: x, kept: make(map[*rfile]fileID), followers: make(map[*rfile]found), gone: make(map[fileID]uint64)}
	if tgt.exists {
		fd, err := unix.Open(tgt.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", tgt, err)
		}
		defer unix.Close(fd)
		x.root = fd
	} else {
		x.dirs[0].fresh = true
		dr.add(OpMkdir, ".")
	}
	// Breadth first, as planned: parents before their children.
	for _, d := range x.dirs {
		if err := dr.dir(ctx, d); err != nil {
			return err
		}
	}
	dr.links()
	x.actions = dr.actions
	ranges, err := x.planData()
	if err != nil {
		return err
	}
	for _, rg := range ranges {
		if rg.end > rg.off {
			x.packsFetched.Add(1)
			x.bytesFetched.Add(uint64(rg.end - rg.off))
		}
	}
	return nil
}

func (dr *dryRun) add(op, rel string) {
	dr.actions = append(dr.actions, Action{Op: op, Path: displayRel(rel)})
}

// dir does the dry run of one directory of the plan.
func (dr *dryRun) dir(ctx context.Context, d *rdir) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fd := -1
	if !d.fresh {
		var err error
		if fd, err = dr.x.openBeneath(d.rel, unix.O_RDONLY|unix.O_DIRECTORY, 0); err != nil {
			return atPath(displayRel(d.rel), err)
		}
		defer unix.Close(fd)
		if err := dr.extras(ctx, fd, d); err != nil {
			return err
		}
	}
	for i := range d.tree.Nodes {
		n := &d.tree.Nodes[i]
		rel := joinRel(d.rel, n.Name)
		var st unix.Stat_t
		exists := false
		if fd >= 0 {
			switch err := unix.Fstatat(fd, n.Name, &st, unix.AT_SYMLINK_NOFOLLOW); err {
			case nil:
				exists = true
			case unix.ENOENT:
			default:
				return atPath(rel, fmt.Errorf("lstat: %w", err))
			}
		}
		if err := dr.entry(ctx, fd, d, i, exists, &st); err != nil {
			return atPath(rel, err)
		}
	}
	return nil
}

// extras removes, on paper, the names of d that the snapshot lacks.
func (dr *dryRun) extras(ctx context.Context, fd int, d *rdir) error {
	names, err := readNames(fd)
	if err != nil {
		return atPath(displayRel(d.rel), fmt.Errorf("list: %w", err))
	}
	slices.Sort(names)
	for _, name := range names {
		if _, ok := d.tree.Find(name); ok || (d.rel == "" && name == markerName) {
			continue
		}
		if err := dr.remove(ctx, fd, joinRel(d.rel, name), name); err != nil {
			return atPath(joinRel(d.rel, name), err)
		}
	}
	return nil
}

// entry does the dry run of entry i of d, which exists (with stat st) or
// not.
func (dr *dryRun) entry(ctx context.Context, fd int, d *rdir, i int, exists bool, st *unix.Stat_t) error {
	n := &d.tree.Nodes[i]
	rel := joinRel(d.rel, n.Name)
	typ := st.Mode & unix.S_IFMT
	var op string
	switch n.Type {
	case manifest.TypeDir:
		if exists && typ == unix.S_IFDIR {
			return nil // listed in its turn
		}
		d.ents[i].sub.fresh = true
		op = OpMkdir
	case manifest.TypeFile:
		return dr.file(ctx, fd, d.ents[i].file, exists, st)
	case manifest.TypeSymlink:
		if exists && typ == unix.S_IFLNK && symlinkIs(fd, n.Name, n.Target) {
			return nil
		}
		op = OpSymlink
	default:
		if exists && typ == unix.S_IFIFO {
			return nil
		}
		op = OpMkfifo
	}
	if exists {
		if err := dr.remove(ctx, fd, rel, n.Name); err != nil {
			return err
		}
	}
	dr.add(op, rel)
	return nil
}

// symlinkIs reports whether name in fd is a symlink to target.
func symlinkIs(fd int, name, target string) bool {
	buf := make([]byte, len(target)+1)
	k, err := unix.Readlinkat(fd, name, buf)
	return err == nil && k == len(target) && string(buf[:k]) == target
}

// file does the dry run of a regular file: kept when unchanged (as the
// real run decides it), written otherwise; a further hard-link name is
// decided by links, once every first name is.
func (dr *dryRun) file(ctx context.Context, fd int, f *rfile, exists bool, st *unix.Stat_t) error {
	x := dr.x
	rel := f.display()
	id := fileID{uint64(st.Dev), st.Ino}
	if f.leader != nil {
		fo := found{exists: exists, id: id}
		if exists {
			var err error
			if fo.removes, err = dr.count(ctx, fd, f.node.Name, false); err != nil {
				return err
			}
		}
		dr.followers[f] = fo
		return nil
	}
	if exists && st.Mode&unix.S_IFMT == unix.S_IFREG {
		seen := *st
		seen.Nlink -= min(seen.Nlink, dr.gone[id])
		if x.unchanged(fd, rel, f.node, &seen) {
			x.filesUnchanged.Add(1)
			dr.kept[f] = id
			return nil
		}
	} else if exists {
		if err := dr.remove(ctx, fd, rel, f.node.Name); err != nil {
			return err
		}
	}
	f.write = true
	x.filesWritten.Add(1)
	x.bytesWritten.Add(f.node.Size)
	dr.add(OpWrite, rel)
	return nil
}

// links decides the further names of hard-linked files as the link pass
// would: kept when the name is already the kept first name's inode,
// linked otherwise (after removing what is there).
func (dr *dryRun) links() {
	for _, f := range dr.x.files {
		fo, ok := dr.followers[f]
		if !ok {
			continue
		}
		if fo.exists {
			if id, kept := dr.kept[f.leader]; kept && id == fo.id {
				dr.x.filesUnchanged.Add(1)
				continue
			}
			dr.x.removed.Add(fo.removes)
			dr.add(OpRemove, f.display())
		}
		dr.add(OpLink, f.display())
	}
}

// remove lists name (rel below the target) in the directory fd as
// removed, with the entries below it.
func (dr *dryRun) remove(ctx context.Context, fd int, rel, name string) error {
	n, err := dr.count(ctx, fd, name, true)
	if err != nil {
		return err
	}
	dr.x.removed.Add(n)
	dr.add(OpRemove, rel)
	return nil
}

// count returns how many entries removing name from the directory fd
// would remove, without following symlinks; with note, it records the
// hard-linked names it takes away.
func (dr *dryRun) count(ctx context.Context, fd int, name string, note bool) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, fmt.Errorf("lstat %q: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if note && st.Nlink > 1 {
			dr.gone[fileID{uint64(st.Dev), st.Ino}]++
		}
		return 1, nil
	}
	sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %q: %w", name, err)
	}
	defer unix.Close(sub)
	names, err := readNames(sub)
	if err != nil {
		return 0, fmt.Errorf("list %q: %w", name, err)
	}
	total := uint64(1)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		c, err := dr.count(ctx, sub, n, note)
		total += c
		if err != nil {
			return total, fmt.Errorf("%q: %w", name, err)
		}
	}
	return total, nil
}
