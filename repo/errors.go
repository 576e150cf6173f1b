package repo

import "errors"

// Sentinel errors; wrapped with the object or path they concern.
var (
	// ErrNoRepository: the store holds no config object.
	ErrNoRepository = errors.New("repo: no sandsnap repository here")
	// ErrVersion: the repository was written by a newer format version.
	ErrVersion = errors.New("repo: unsupported repository version")
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
	// ErrUnreadable: a file could not be read during backup.
	ErrUnreadable = errors.New("repo: unreadable file")
	// ErrAmbiguous: a short ID prefix matches more than one snapshot.
	ErrAmbiguous = errors.New("repo: ambiguous snapshot ID prefix")
)
