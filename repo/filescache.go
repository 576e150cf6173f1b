package repo

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
)

// The files cache remembers, for one directory on this host, which
// snapshot it was last restored from or backed up as and the stat of every
// regular file at that moment (inode, size, mtime, mode) with a digest of
// its chunk list. A restore gives every file a new inode and ctime, so
// restic-style inode/ctime checks would re-read every file of a fork; the
// restorer writes this cache instead, and the next backup trusts an entry
// whose stat still matches, taking the chunk list from the parent
// snapshot. A restore in place uses it the same way to skip reading files
// that are already right.
//
// It is a cache: a missing, unreadable or foreign file only costs reads,
// never correctness, because an entry is used only when the snapshot's
// node has the same content digest.
//
// Layout of CacheDir/files/<key> (key: the BLAKE3 of repository ID and
// absolute directory, first 16 bytes in hex):
//
//	magic "SSFC" | version byte 1 | uvarint len + repository ID | uvarint len + dir
//	| snapshot ID (32) | uvarint count | count entries in any order:
//	uvarint len + path | uvarint inode | uvarint size | varint mtime ns
//	| varint ctime ns | uvarint mode | digest (32)
const (
	filesCacheMagic   = "SSFC"
	filesCacheVersion = 1
	// maxFilesCache bounds what a cache file may make us allocate.
	maxFilesCache = 1 << 30
)

// fileStat is what the files cache knows about one regular file.
type fileStat struct {
	Ino     uint64
	Size    uint64
	MtimeNs int64
	// CtimeNs catches a content change hidden behind a restored mtime:
	// nothing but the kernel sets ctime.
	CtimeNs int64
	Mode    uint32
	Digest  chunk.ID // contentDigest of the file's chunk list
}

// filesCache is one directory's files cache.
type filesCache struct {
	Snapshot chunk.ID
	mu       sync.Mutex // guards Files while a backup or restore fills it
	Files    map[string]fileStat
}

// newFilesCache returns an empty cache with room for size entries.
func newFilesCache(size int) *filesCache {
	return &filesCache{Files: make(map[string]fileStat, size)}
}

// fcSize sizes a new cache like an old one (nil: 0).
func fcSize(fc *filesCache) int {
	if fc == nil {
		return 0
	}
	return len(fc.Files)
}

// set records one file; safe for concurrent use.
func (fc *filesCache) set(rel string, st fileStat) {
	fc.mu.Lock()
	fc.Files[rel] = st
	fc.mu.Unlock()
}

// lookup returns the entry for rel; a nil cache has none. It takes no
// lock: it is for caches loaded from disk, which nothing writes (set is
// for the cache a backup or restore builds).
func (fc *filesCache) lookup(rel string) (fileStat, bool) {
	if fc == nil {
		return fileStat{}, false
	}
	e, ok := fc.Files[rel]
	return e, ok
}

// sameStat reports whether e describes a file with stat st.
func (e fileStat) sameStat(st *unix.Stat_t) bool {
	return e.Ino == st.Ino && e.Size == uint64(st.Size) && e.MtimeNs == st.Mtim.Nano() && e.CtimeNs == st.Ctim.Nano()
}

// match reports whether the entry for rel describes a file with this stat
// (inode, size, mtime, ctime) and this content; a nil cache matches
// nothing.
func (fc *filesCache) match(rel string, st *unix.Stat_t, content []chunk.ID) bool {
	e, ok := fc.lookup(rel)
	return ok && e.sameStat(st) && e.Digest == contentDigest(content)
}

// contentDigest names a file's content by its chunk list.
func contentDigest(ids []chunk.ID) chunk.ID {
	b := make([]byte, 0, len(ids)*chunk.IDSize)
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return chunk.Hash(b)
}

// filesCachePath returns where dir's files cache lives, or "" without a
// cache folder.
func (r *Repository) filesCachePath(dir string) string {
	if r.opts.CacheDir == "" {
		return ""
	}
	key := chunk.Hash([]byte(r.cfg.ID + "\x00" + dir))
	return filepath.Join(r.opts.CacheDir, "files", key.String()[:32])
}

// loadFilesCache returns dir's files cache, or nil if there is none or it
// is unusable (which is logged, not fatal).
func (r *Repository) loadFilesCache(dir string) *filesCache {
	p := r.filesCachePath(dir)
	if p == "" {
		return nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			r.opts.Logf("files cache %s: %v", p, err)
		}
		return nil
	}
	fc, err := decodeFilesCache(data, r.cfg.ID, dir)
	if err != nil {
		r.opts.Logf("ignoring files cache %s: %v", p, err)
		return nil
	}
	return fc
}

// saveFilesCache replaces dir's files cache atomically.
func (r *Repository) saveFilesCache(dir string, fc *filesCache) {
	p := r.filesCachePath(dir)
	if p == "" {
		return
	}
	err := func() error {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		w := bufio.NewWriterSize(tmp, 1<<20)
		encodeFilesCache(w, fc, r.cfg.ID, dir)
		if err := w.Flush(); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), p)
	}()
	if err != nil {
		// A cache that cannot be written costs the next backup reads only.
		r.opts.Logf("files cache %s not written: %v", p, err)
	}
}

func encodeFilesCache(w *bufio.Writer, fc *filesCache, repoID, dir string) {
	var buf [binary.MaxVarintLen64]byte
	uv := func(v uint64) { w.Write(buf[:binary.PutUvarint(buf[:], v)]) }
	str := func(s string) { uv(uint64(len(s))); w.WriteString(s) }
	w.WriteString(filesCacheMagic)
	w.WriteByte(filesCacheVersion)
	str(repoID)
	str(dir)
	w.Write(fc.Snapshot[:])
	// Entries go in map order: a cache need not be byte-stable, and
	// sorting 30k paths is a tenth of a no-change backup.
	uv(uint64(len(fc.Files)))
	for p, e := range fc.Files {
		str(p)
		uv(e.Ino)
		uv(e.Size)
		w.Write(buf[:binary.PutVarint(buf[:], e.MtimeNs)])
		w.Write(buf[:binary.PutVarint(buf[:], e.CtimeNs)])
		uv(uint64(e.Mode))
		w.Write(e.Digest[:])
	}
}

var errFilesCache = errors.New("repo: bad files cache")

// fcReader reads the files cache encoding with a sticky error.
type fcReader struct {
	rd  *bytes.Reader
	err error
}

func (d *fcReader) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.rd)
	if err != nil {
		d.err = errFilesCache
	}
	return v
}

func (d *fcReader) v() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.rd)
	if err != nil {
		d.err = errFilesCache
	}
	return v
}

func (d *fcReader) bytes(n uint64) []byte {
	if d.err != nil || n > uint64(d.rd.Len()) {
		d.err = errFilesCache
		return nil
	}
	b := make([]byte, n)
	io.ReadFull(d.rd, b)
	return b
}

func (d *fcReader) str() string { return string(d.bytes(d.uv())) }

func (d *fcReader) id() (x chunk.ID) {
	copy(x[:], d.bytes(chunk.IDSize))
	return x
}

func decodeFilesCache(data []byte, repoID, dir string) (*filesCache, error) {
	if len(data) > maxFilesCache {
		return nil, fmt.Errorf("%w: %d bytes", errFilesCache, len(data))
	}
	d := &fcReader{rd: bytes.NewReader(data)}
	head := d.bytes(uint64(len(filesCacheMagic)) + 1)
	if d.err != nil || string(head[:4]) != filesCacheMagic || head[4] != filesCacheVersion {
		return nil, fmt.Errorf("%w: not a version %d files cache", errFilesCache, filesCacheVersion)
	}
	if d.str() != repoID || d.str() != dir {
		return nil, fmt.Errorf("%w: written for another repository or directory", errFilesCache)
	}
	snap := d.id()
	n := d.uv()
	if n > uint64(d.rd.Len()) {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", errFilesCache, n, d.rd.Len())
	}
	fc := newFilesCache(int(n))
	fc.Snapshot = snap
	for range n {
		p := d.str()
		e := fileStat{Ino: d.uv(), Size: d.uv(), MtimeNs: d.v(), CtimeNs: d.v(), Mode: uint32(d.uv()), Digest: d.id()}
		if d.err != nil {
			break
		}
		fc.Files[p] = e
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: truncated", errFilesCache)
	}
	if d.rd.Len() != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", errFilesCache)
	}
	return fc, nil
}

// fileStatOf builds a files-cache entry for node n as st saw it.
func fileStatOf(st *unix.Stat_t, n *manifest.Node) fileStat {
	return fileStat{Ino: st.Ino, Size: n.Size, MtimeNs: n.MtimeNs, CtimeNs: st.Ctim.Nano(), Mode: n.Mode, Digest: contentDigest(n.Content)}
}
