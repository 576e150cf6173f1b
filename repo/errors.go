package repo

import "errors"

// Sentinel errors; wrapped with the object or path they concern.
var (
	// ErrNoRepository: the store holds no config object.
	ErrNoRepository = errors.New("repo: no sandsnap repository here")
	// ErrVersion: the repository was written by a newer format version.
	ErrVersion = errors.New("repo: unsupported repository version")
	// ErrBadConfig: the config object exists but cannot be read as one
	// (garbage, truncated, out-of-range values). The repository's other
	// objects may be intact; nothing is re-created over it.
	ErrBadConfig = errors.New("repo: repository config is damaged")
	// ErrConfigMissing: the store holds repository objects (packs, index
	// deltas or snapshots) but no config. Creating a new config there
	// would pick a new chunker polynomial and silently end deduplication,
	// so OpenOrInit refuses.
	ErrConfigMissing = errors.New("repo: repository objects without a config")
	// ErrSnapshotNotFound: no snapshot has that ID or handle.
	ErrSnapshotNotFound = errors.New("repo: snapshot not found")
	// ErrExpired: the snapshot's TTL has passed.
	ErrExpired = errors.New("repo: snapshot expired")
	// ErrBlobNotFound: a blob a tree refers to is in no index.
	ErrBlobNotFound = errors.New("repo: blob not found in index")
	// ErrUnsafePath: a snapshot names a path that would escape the target.
	ErrUnsafePath = errors.New("repo: unsafe path in snapshot")
	// ErrNotDir: the backup source or restore target is not a directory.
	ErrNotDir = errors.New("repo: not a directory")
	// ErrUnreadable: a file or directory could not be read during backup.
	ErrUnreadable = errors.New("repo: unreadable")
	// ErrAmbiguous: a short ID prefix matches more than one snapshot.
	ErrAmbiguous = errors.New("repo: ambiguous snapshot ID prefix")
	// ErrTargetRefused: a restore target that must not be made identical
	// to a snapshot: the root or a system directory (always), or a
	// non-empty directory sandsnap never restored or backed up, without
	// RestoreOptions.Delete.
	ErrTargetRefused = errors.New("repo: restore target refused")
	// ErrIncomplete: the directory holds the marker of a restore that did
	// not finish, so its contents are neither the old state nor the
	// snapshot's.
	ErrIncomplete = errors.New("repo: directory holds an incomplete restore")
	// ErrLimit: the snapshot declares (or expands to) more entries, bytes
	// or depth than the restore accepts (RestoreOptions.Limits), or more
	// than it declares. Nothing was written.
	ErrLimit = errors.New("repo: snapshot exceeds a limit")
)
