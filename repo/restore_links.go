package repo

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"
)

// Hard links. The snapshot gives an inode several names (a link group,
// one LinkID); the first name in plan order (the leader) is written or
// kept, and the link pass makes every other name a link to it.
//
// An existing inode is reused (kept, and given the snapshot's metadata)
// only when every one of its links is a name the snapshot gives that
// inode inside the target. Otherwise the metadata pass would chmod, chown
// and strip xattrs from an inode that some other name, possibly outside
// the target, still reaches, and the link pass would add names to it.
// Files outside any group must have one link (unchanged checks st_nlink
// against the group's size); a group's leader is checked once the
// structure pass has put every name of the group in place
// (checkLinkGroups).

// dirCache keeps directory descriptors open across the link passes.
type dirCache struct {
	x   *restorer
	fds map[*rdir]int
}

func (c *dirCache) open(d *rdir) (int, error) {
	if fd, ok := c.fds[d]; ok {
		return fd, nil
	}
	if len(c.fds) >= 256 {
		c.close()
	}
	fd, err := c.x.openBeneath(d.rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, err
	}
	c.fds[d] = fd
	return fd, nil
}

func (c *dirCache) close() {
	for d, fd := range c.fds {
		unix.Close(fd)
		delete(c.fds, d)
	}
}

// links gives every further name of a hard-linked inode its link to the
// first name, unless it is that inode already.
func (x *restorer) links(ctx context.Context) error {
	c := &dirCache{x: x, fds: make(map[*rdir]int)}
	defer c.close()
	for _, f := range x.files {
		if f.leader == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := x.link(ctx, c, f); err != nil {
			return fmt.Errorf("hard link %q to %q: %w", f.display(), f.leader.display(), err)
		}
	}
	return nil
}

func (x *restorer) link(ctx context.Context, c *dirCache, f *rfile) error {
	l := f.leader
	ldir, err := c.open(l.dir)
	if err != nil {
		return err
	}
	fdir, err := c.open(f.dir)
	if err != nil {
		return err
	}
	var lst, fst unix.Stat_t
	if err := unix.Fstatat(ldir, l.name(), &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	switch err := unix.Fstatat(fdir, f.node.Name, &fst, unix.AT_SYMLINK_NOFOLLOW); err {
	case nil:
		if fst.Dev == lst.Dev && fst.Ino == lst.Ino {
			x.filesUnchanged.Add(1)
			x.progressFile(int64(f.node.Size))
			return nil
		}
		if err := x.replace(ctx, fdir, f.node.Name); err != nil {
			return err
		}
	case unix.ENOENT:
	default:
		return err
	}
	if err := unix.Linkat(ldir, l.name(), fdir, f.node.Name, 0); err != nil {
		return err
	}
	x.progressFile(int64(f.node.Size))
	return nil
}

// checkLinkGroups runs after the structure pass, before any data is
// written. For every group whose leader kept an existing inode, it lstats
// every name of the group and counts those that are that inode: unless
// they are all of its st_nlink links, the leader is rewritten (a new
// inode under a temporary name, renamed over the old one at the end), so
// that the old inode is left to whatever else links it, untouched.
func (x *restorer) checkLinkGroups(ctx context.Context) error {
	groups := make(map[*rfile][]*rfile)
	var leaders []*rfile // in plan order, so that the work is deterministic
	for _, f := range x.files {
		l := f.leader
		if l == nil || l.write {
			continue
		}
		if groups[l] == nil {
			leaders = append(leaders, l)
		}
		groups[l] = append(groups[l], f)
	}
	c := &dirCache{x: x, fds: make(map[*rdir]int)}
	defer c.close()
	for _, l := range leaders {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := x.checkLinkGroup(c, l, groups[l]); err != nil {
			return fmt.Errorf("hard link group of %q: %w", l.display(), err)
		}
	}
	return nil
}

// checkLinkGroup checks the group of the kept leader l (its other names
// are names) and accounts for l as unchanged or rewrites it.
func (x *restorer) checkLinkGroup(c *dirCache, l *rfile, names []*rfile) error {
	ldir, err := c.open(l.dir)
	if err != nil {
		return err
	}
	var lst unix.Stat_t
	if err := unix.Fstatat(ldir, l.node.Name, &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("lstat: %w", err)
	}
	count := uint64(1)
	for _, f := range names {
		fdir, err := c.open(f.dir)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		switch err := unix.Fstatat(fdir, f.node.Name, &st, unix.AT_SYMLINK_NOFOLLOW); err {
		case nil:
			if st.Dev == lst.Dev && st.Ino == lst.Ino {
				count++
			}
		case unix.ENOENT:
		default:
			return fmt.Errorf("lstat %q: %w", f.display(), err)
		}
	}
	if count == uint64(lst.Nlink) {
		x.countKept(l)
		return nil
	}
	// Some link is not a name of the group: write a new inode.
	if x.rewrite {
		// After an unfinished run (restorer.rewrite): no second copy.
		if err := unix.Unlinkat(ldir, l.node.Name, 0); err != nil {
			return fmt.Errorf("remove: %w", err)
		}
		if err := x.createFile(ldir, l.node.Name, l.node.Size); err != nil {
			return err
		}
	} else if err := x.createTemp(ldir, l); err != nil {
		return err
	}
	l.write = true
	x.countCreated(l)
	return nil
}
