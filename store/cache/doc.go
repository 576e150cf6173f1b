// Package cache wraps a store.Store with a size-bounded cache of whole
// objects in a local folder, shared by every process on the host that uses
// the same folder. Eight sandboxes restoring the same handle at once fetch
// each pack from the inner store once; the others read it from the disk.
//
// # Words
//
//   - cacheable: a name that Options.Cacheable accepts (by default those
//     under "packs/" and "index/"). Cacheable objects are expected to be
//     immutable: the repository names them by the BLAKE3 of their bytes.
//   - cached copy: a whole cacheable object kept as one file in the folder.
//   - fill: fetching a whole object from the inner store (one Load of
//     offset 0, length 0) and streaming it into a temporary file of the
//     cache, through one 1 MiB buffer: the object is never held in memory.
//   - hit: a Load served from a cached copy without waiting for a fill.
//
// # Behaviour per method
//
// Load of a cacheable name serves the requested range from the cached copy
// if there is one; otherwise it fills the object and then serves the range
// from the new cached copy. Concurrent fills of one name are made one: inside a
// process by golang.org/x/sync/singleflight, across processes by an
// exclusive flock(2) on a lock file, after which the cache is checked again
// (another process may have filled it meanwhile). Options.VerifyReader or
// else Options.Verify, if set, checks the whole object before it enters the
// cache, reading the completed temporary file back (Verify needs it in
// memory; VerifyReader streams it); an object that fails is not cached and
// the Load fails. A fill that cannot write its file, or whose object turns
// out larger than the bound, gives up and the Load reads its range from the
// inner store. Load of any other name passes through.
//
// Save passes through; after a successful Save of a cacheable name the
// bytes are also written into the cache (a backup's packs are then local
// for the next restore on this host), unless they do not fit the bound.
// Save installs them under the object's lock, so a fill that raced with the
// Save cannot leave older bytes behind it; a failed Save other than
// store.ErrExists or store.ErrPrecondition drops the cached copy, since the
// inner store may or may not have changed. Remove passes through and then
// drops the cached copy, also under the lock. Stat and List always pass
// through: whether an object exists in the real store is what matters.
//
// # Layout of the folder
//
//	objects/<h>          cached copies, h = hex SHA-256 of the object's name
//	objects/.tmp-*       files being written; scans skip them and delete
//	                     those older than an hour (left by a crash)
//	locks/<h[:3]>        lock files, one per 4096th of the key space; never
//	                     deleted, so flock on them is never raced by unlink
//
// Names are hashed so that any object name maps to one flat file name
// (the store allows names like "a" and "a/b" side by side; a folder tree
// would not). A cached file is a 16-byte header, the 8 bytes "sncache\x01"
// then the object's length as a big-endian uint64, followed by the object's
// bytes. A file is written under a temporary name and renamed into place,
// so a reader never sees a partial file; the header catches what the
// rename cannot (a file truncated by a crash of the host or a disk error):
// a file whose size disagrees with its header, or whose read fails, is
// deleted and the object is filled again. Files are not fsynced: losing
// one costs a fetch.
//
// Bit rot inside a cached file is not detected here (that would mean
// hashing every pack on every read); the repository's per-blob BLAKE3
// check catches it. The repository then calls Invalidate (the optional
// store.Invalidator capability, which every wrapper forwards), which drops
// the cached copy under the object's lock, counts it in Stats.Healed and
// logs it; the repository's second read fills the object again from the
// inner store. Deleting the folder by hand is always safe.
//
// # Size bound and eviction
//
// The files under objects/ are kept near Options.MaxBytes, counting their
// headers, by least-recently-used eviction. A hit stamps its file's mtime
// with Options.Now at most once a minute (os.Chtimes); a fill stamps the new
// file. Each Store keeps an estimate of the folder's size, from one scan at
// New plus its own fills. When the estimate passes MaxBytes, or this Store
// has filled a tenth of MaxBytes since its last scan (other processes fill
// too), it scans the folder again and, if the folder holds more than
// MaxBytes, deletes the oldest files until it holds at most 90% of
// MaxBytes. It never deletes the file it has just filled. Several processes
// may evict at once; a file deleted while another process reads it stays
// readable to that reader (Unix semantics), and a file that is gone is
// never an error. An object larger than MaxBytes is served but never
// cached: its fill stops once the bytes pass the bound, and from then on
// this Store passes its Loads through as range requests. With many processes filling at once the folder may pass the bound
// by up to a tenth of MaxBytes per process until the next scan.
//
// # Without flock
//
// On systems without flock(2) the lock covers only the current process,
// and concurrent processes may fetch the same object more than once (still
// correctly: every install is a rename of a whole file).
package cache
