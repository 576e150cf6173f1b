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
//	leases/<writer>     one object per running backup or restore, renewed while it runs
//	gc/state            the collector's condemned sets and generation (If-Match updates)
//	clock/<random>      probes that read the store's clock; each lives for one request
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
// Every entry is reached relative to its directory's open descriptor
// (openat, fstatat, readlinkat, xattrs through the open file), so paths
// longer than PATH_MAX back up and no symlink is followed out of the
// tree; a bounded number of directory descriptors stays open
// (backup_dirs.go). A sparse file's holes are not read: they are served as
// zeros from memory between the data extents that SEEK_DATA and SEEK_HOLE
// report, so its chunks are those of the same bytes read densely.
//
// # Restore
//
// Restore plans in memory first (every tree, name and blob, checked before
// anything is written). Trees are shared by ID, so a few kilobytes of
// trees can describe billions of entries: before building anything per
// entry, the plan counts the snapshot's trees once per unique tree
// (limits.go) and refuses, with ErrLimit, a snapshot that declares more
// than the restore's Limits allow or whose trees hold more than it
// declares or the Limits allow (entries, bytes, depth). Diff and Verify
// count the same way. Hard-link names that disagree (one inode, two
// contents or modes) are refused too. Then the restore runs four passes:
// structure top-down, data by pack range (neighbouring frames merged into
// one range read, each blob's BLAKE3 verified, positional writes, all-zero
// blocks left as holes, all-zero blobs not written at all), hard links,
// and metadata bottom-up (owner, xattrs, mode, mtime; directories last).
// No symlink below the target is ever followed: every operation is
// relative to a directory file descriptor opened without following links.
//
// Before anything is read or written, the target (resolved once: the
// symlinks of its deepest existing ancestor) passes the target policy
// (restore_target.go): the root, system directories (/etc, /usr, /var,
// /boot ... themselves, and anything below /etc, /bin, /usr/bin, /usr/lib*,
// /usr/share ...) and the restoring user's home are refused whatever the
// options (ErrTargetRefused). A non-empty directory is made identical to
// the snapshot, removing what the snapshot lacks, only when this host has
// a files cache for it (sandsnap restored or backed it up here), it holds
// an unfinished restore's marker, or RestoreOptions.Delete is set. Without
// a cache folder (Options.CacheDir "", the CLI's --no-cache) there is no
// record, so such restores need Delete.
//
// A missing or empty target is restored into a staging sibling
// (.<name>.sandsnap-<pid>-<random>, flock'ed while it runs) and renamed
// into place at the end; a failed or cancelled restore removes it, so
// nothing half-restored appears under the target's name. An empty target
// keeps its own owner, mode, mtime and xattrs. A later restore removes the
// staging siblings of processes that are gone. A non-empty target, a mount
// point and a target whose parent is not writable are restored in place,
// holding the directory's flock and the marker DIR/.sandsnap-restoring
// (snapshot, start, host, pid) from before the first change until after
// the last: Backup refuses such a directory (ErrIncomplete), DirStatus
// reports it, and a snapshot whose root holds that name is refused. A
// failed run in place removes its temporary files and the unfinished files
// it created; the next run, finding the marker, removes changed files
// before writing them again instead of writing beside them, so a retry
// after ENOSPC needs no more room than the snapshot.
//
// RestoreOptions.DryRun applies the policy, plans, and compares the target
// read-only with the real run's unchanged test: RestoreStats.Actions lists
// what would be written, created, linked and removed, and the counts are
// the real run's. DirStatus reports what this host knows of a directory:
// its files-cache record and an unfinished restore's marker.
//
// A snapshot may be hostile, and so may the target's existing contents.
// An existing inode is reused (kept and given the snapshot's metadata)
// only when every one of its links is a name the snapshot gives it inside
// the target, so a hard link to an outside file never carries a chmod,
// chown or xattr change out (restore_links.go). Only the xattr namespaces
// a backup records are restored (user.*, POSIX ACLs, file capabilities);
// where an access ACL is not set, the group bits are narrowed to what the
// owning group had, never left at the mask (restore_meta.go). What a
// restore leaves out is listed in RestoreStats.Skipped. An Untrusted
// restore also drops setuid/setgid bits, non-user xattrs and owners.
//
// # Reading without restoring
//
// Repository.FS opens a snapshot as an io/fs file system (SnapshotFS):
// directories are loaded as lookups reach them, through the tree cache;
// a read of a file fetches only the frames that hold the bytes asked for,
// one range read each (through the host cache when the store is one),
// checks every blob's BLAKE3 and keeps recently used frames in a bounded
// cache. Symlinks are never followed. The FS holds a lease until Close,
// as a restore does. Its storage access goes through one type,
// blobReader (fs_blobs.go), the seam the planned blob layer replaces.
//
// # Copies that fail verification
//
// Every read of a pack, a frame or an index delta is verified (BLAKE3 of
// the object or of each blob). When the bytes fail, the copy the store
// served may be what is damaged (a host cache's file that rotted on this
// disk) while the store holds a good object: the copy is dropped with
// store.Invalidate (a no-op for stores that keep none), the event is
// logged, and the object is read once more. A second failure is the
// object's own corruption and is reported naming it. A restore drops a
// pack's copy once, then re-reads each frame that failed.
//
// # Garbage collection
//
// Any number of writers (backups, restores) share a repository with no
// lock while gc runs. TTL expiry only removes a snapshot object (gc does
// it; Restore and Snapshots refuse or hide an expired one at once); a
// chunk lives while any live snapshot reaches it. Every time that matters
// is the store's: the ModTime it stamps on objects (a probe object under
// clock/, or a lease's own write), never a host's clock. Snapshot created
// and expires stamps are store time too.
//
// Writer protocol (Backup; Restore and an open SnapshotFS do steps 1 and 5):
//
//  1. write leases/<random id>, renewed every LeaseTTL/3 (default 15 min)
//     by a goroutine; then read gc/state and treat every blob whose every
//     copy is in a condemned pack as absent: it is uploaded again, never
//     deduplicated against (markNew, the parent reuse, tree dedup). The
//     index then prefers uncondemned copies for reads. If gc's generation
//     changed since the index was loaded, the index is reloaded from
//     scratch, so a long-lived process drops entries of deleted packs;
//  2. remember every blob taken from the index instead of uploaded;
//  3. before committing: renew the lease (its ModTime stamps the snapshot)
//     and fail with ErrLeaseLapsed if it went unrenewed for longer than
//     its TTL; read gc/state again and copy every remembered blob that is
//     now condemned into a new pack of this backup (the old pack still
//     exists: the lease holds it);
//  4. write the index delta, then the snapshot;
//  5. remove the lease, only after the snapshot exists.
//
// A writer never uploads a pack whose ID (the hash of its bytes) is
// condemned: such a pack gets one extra random blob, so that re-creating
// exactly a condemned pack cannot resurrect an object gc is deleting.
//
// A gc run (GC), in this order:
//
//  1. read the store's clock; read gc/state and claim it (an If-Match
//     write: a concurrent gc's next write then fails with ErrConcurrentGC,
//     "another gc is running");
//  2. list leases (expired: older than the TTL by store time);
//  3. list snapshots, removing expired ones; load the whole index (after
//     the snapshots: a snapshot's delta is written before it); mark every
//     tree and chunk the live snapshots reach;
//  4. delete: a condemned set whose recorded leases have all ended or
//     expired is deletable, except a pack holding a reachable blob with no
//     copy outside the packs being deleted (a writer committed it after
//     the condemning mark: the pack is kept and uncondemned). gc/state
//     marks the set deleting (generation + 1), then one folded index delta
//     is written with every remaining pack's entries, then the deltas gc
//     read are removed (never one it did not read), then the packs;
//  5. condemn: packs whose blobs are all dead (each live blob has one home
//     copy, its first in an uncondemned pack; other copies count as
//     dead), orphan packs that no index lists, older than the lease TTL
//     (a crashed writer's uploads), and packs whose live fraction is below
//     the repack threshold, once their live blobs are copied into new,
//     indexed packs. The new set is written (generation + 1), then the
//     leases are listed again and recorded with it ("sealed").
//
// Why it is safe: a pack is deleted only by a run after the one that
// condemned it, once every lease listed after the condemning write has
// ended or expired. A writer whose lease is not among them wrote it after
// the condemnation, so it read gc/state after it and never reused those
// packs. A writer among them has ended: it wrote its snapshot before its
// lease ended, so the deleting run's mark (taken after it listed leases)
// sees that snapshot, and the reachability check keeps any pack it still
// needs. A writer that cannot renew its lease for a TTL fails instead of
// committing. Two gcs never both act on one version of gc/state. With no
// writer running, two runs free everything expired snapshots alone held.
//
// Memory: the mark holds one map entry per reachable blob, a 32-byte ID:
// measured 52 to 84 bytes per blob with Go's map overhead (depending on
// where the map's growth stands; 56 at 3 million blobs), and gc holds the
// whole index, as every open Repository does.
//
// The objects' formats are in FORMAT-gc.md.
//
// Lifecycle rules (R2, S3): a prefix rule may cover clock/ (probes are
// removed at once; only a crash leaves one) and, with a TTL far above the
// lease TTL (days), leases/. Never packs/ or index/: a pack holds chunks
// that every fork's snapshots share, whatever their age; and never
// snapshots/: a snapshot's TTL is sandsnap's (gc removes expired snapshot
// objects), and a rule would remove live ones.
//
// # Handles
//
// A Handle is the small JSON value a backup returns (id, name, dir,
// created, expires, parent, stats). Its id is the snapshot's ID, which is
// all that a restore needs.
package repo
