// Package local is a store.Store kept in a folder of the local filesystem.
//
// # Layout
//
// An object is a regular file under the store's directory; the slashes of
// its name are directories ("packs/ab/<id>" is DIR/packs/ab/<id>). The
// store's own files start with ".sandsnap-" (temporary files and the lock
// file), are never listed, and names with an element that starts so are
// store.ErrInvalidName. A folder cannot hold both "a" and "a/b" as objects;
// the repository's layout never needs that.
//
// # Atomicity
//
// Save writes a temporary file in the object's directory, fsyncs it, and
// then moves it into place, so a killed process never leaves a partial
// object under its real name (only a stray ".sandsnap-tmp-*" file, which
// List ignores). An unconditional Save renames over the old file. A
// create-only Save (IfNoneMatch) hard-links the temporary file to the final
// name, which fails atomically if the name exists, even between processes;
// the filesystem must support hard links. After the move the directory is
// fsynced, so a saved object survives a crash.
//
// # ETags and IfMatch
//
// An object's ETag is "<size>-<mtime ns>-<inode>" in hex. Save stamps each
// new file with the host clock at nanosecond precision, so a new version
// gets a new ETag even when the filesystem reuses the inode of an old one
// and its own timestamps are coarse. A conditional replace (IfMatch) takes
// an exclusive flock(2) on DIR/.sandsnap-lock, compares the ETag and
// renames; every other Save and every Remove takes the same lock shared.
// So IfMatch is atomic against all writers (goroutines and processes) that
// use this package on the same folder; a process that writes the folder by
// other means is not excluded. Reads take no lock: they see the old or the
// new file, never a mix. Without flock (non-unix systems) the lock covers
// only the current process.
//
// # Ranges
//
// Load reads with ReadAt through an io.SectionReader. A negative offset or
// length, or a range that ends past the object's end, is
// store.ErrInvalidRange; offset == size with length 0 yields no bytes.
package local
