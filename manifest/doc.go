// Package manifest defines what a snapshot says about a directory: trees of
// nodes, and the snapshot object that commits a backup. It encodes,
// decodes, walks and diffs them; it stores nothing itself (repo/ does).
//
// # Node
//
// A node is one directory entry: a name (one path element), a type (file,
// directory, symlink, FIFO), mode bits, owner, mtime in nanoseconds,
// extended attributes, and what the type needs: a file's size, chunk IDs
// and hard-link ID; a directory's subtree ID; a symlink's target. Sockets
// and devices are not nodes (a backup skips and counts them).
//
// # Tree
//
// A tree is one directory's nodes, sorted bytewise by name, names unique.
// It is stored as a blob named by chunk.Hash of its encoding, and a
// directory node names its child's tree by that ID, so a snapshot is a
// Merkle tree: its root tree ID fixes every byte below it.
//
// # Snapshot and Summary
//
// A snapshot is the small JSON object that commits a backup: the root tree
// ID, the parent snapshot, a name, the source directory, host, writer,
// creation and expiry times, and a Summary of counts and sizes. Its ID,
// the hash of its encoding, is the handle a user keeps.
//
// # Walk and Diff
//
// Walk visits every node below a root tree, depth first in name order;
// Diff reports what differs between two roots and skips every subtree whose
// ID is the same on both sides without loading it, so comparing a fork with
// its parent costs as much as their difference. Both take a TreeLoader, a
// func, so that tests and repo/ can supply trees from anywhere, and both
// honour SkipDir as io/fs.WalkDir does.
//
// # Why determinism matters
//
// Encode writes one byte sequence for one tree, whatever machine, fork or
// run produces it: no maps, no optional fields, minimal varints, sorted
// entries and xattrs. So an unchanged directory (a whole node_modules/lodash)
// gets the same tree ID in every fork, its blob is stored once, and Diff
// and restore skip it by comparing IDs without loading it. A change to the
// encoding changes every tree ID and so defeats deduplication against every
// earlier snapshot; it needs a Version bump, and the golden files in
// testdata/manifest fail until it gets one.
//
// DecodeTree is the exact inverse: it accepts only what Encode could have
// written (so re-encoding a decoded tree gives its ID back), refuses
// everything else with ErrCorrupt, and bounds its allocations by the input
// length, so a corrupt or hostile blob cannot crash or exhaust a restore.
// The byte format is specified in FORMAT.md.
package manifest
