// Package repo is the only package that knows chunks, packs, trees,
// snapshots and stores together. It backs directories up into a repository,
// restores them, lists and verifies snapshots.
//
// # Objects
//
// A repository is a flat namespace in a store.Store:
//
//	config              format version, chunker parameters, pack sizes; written once, create-only
//	packs/ab/<id>       immutable packs (pack.Writer), named by the BLAKE3 of their bytes
//	index/<id>          immutable index deltas, one per backup, named by the BLAKE3 of their bytes
//	snapshots/<id>      one small JSON object per backup, written last and create-only
//
// # Commit order
//
// A backup uploads its packs, then its index delta, then its snapshot
// object. Nothing refers to a pack until the index delta that lists it
// exists, and nothing is visible as a backup until the snapshot exists, so
// a backup that fails or is killed at any point leaves only unreferenced
// objects (garbage for gc), never a snapshot that lacks data.
//
// # Backup
//
// The walk lists directories on several goroutines and never waits for
// file reads: each directory's tree is saved by a goroutine of its own once
// its children are done, so trees are written bottom-up. Workers (one per
// core) read, chunk, hash and compress files, each filling a data pack of
// its own; uploaders store finished packs concurrently. A file whose size
// and mtime match the parent snapshot's entry reuses its chunk list
// without being read.
//
// # Restore
//
// Restore plans in memory first (every tree, name and blob, checked before
// anything is written), then runs four passes: structure top-down, data by
// pack range (neighbouring frames merged into one range read, each blob's
// BLAKE3 verified, positional writes, all-zero blocks left as holes), hard
// links, and metadata bottom-up (owner, xattrs, mode, mtime; directories
// last). No symlink below the target is ever followed: every operation is
// relative to a directory file descriptor opened without following links.
//
// # Handles
//
// A Handle is the small JSON value a backup returns (id, name, dir,
// created, expires, parent, stats). Its id is the snapshot's ID, which is
// all that a restore needs.
package repo
