// Package fstree compares directory trees at the level of stat(2) and builds
// trees that hold every kind of entry a snapshot must bring back. It exists
// for tests, benchmarks and snapbench; production code never imports it.
//
// # Difference
//
// A Difference is one way in which two trees disagree at one relative path:
// a name present on one side only, or a differing type, permission bits
// (mode & 07777, so setuid, setgid and sticky count), owner, size, mtime to
// the nanosecond, symlink target, file content, user.* extended attribute,
// device number or hard-link structure. Access and change times, inode
// numbers and the size of directories are not compared: no restore can
// reproduce them.
//
// # Hard-link structure
//
// Two names are linked when they are the same inode. Trees agree on links
// when every name is linked to exactly the same set of other names (within
// the tree, after exclusions) on both sides. The raw st_nlink is not
// compared, because a link outside the tree would count in it.
//
// # Fidelity tree
//
// BuildFidelity creates a tree that holds one of every case a faithful
// snapshot must keep: empty, small, random, large and sparse files, deep
// paths, names of arbitrary bytes, symlinks of every shape, hard links,
// special permission bits, owners, extended attributes, nanosecond mtimes and
// FIFOs. Entries that a snapshot is expected to skip (sockets, device nodes)
// are listed in Report.Skipped so that a comparison can exclude them.
package fstree
