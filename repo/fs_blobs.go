package repo

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
)

// fsFrameCacheBytes bounds the decoded frames one SnapshotFS keeps. A
// sequential read needs one frame at a time (a large chunk is a frame of
// its own, at most the chunker's MaxSize, 8 MiB by default); a few more
// serve concurrent readers and the small files that share a frame.
const fsFrameCacheBytes = 32 << 20

// blobReader serves single data blobs for random access: it finds a blob
// in the index, fetches its whole frame with one range read (through the
// host cache when the repository's store is one), decodes the frame,
// checks each blob against its ID the first time it is served, and keeps
// recently used frames, so that sequential reads of a file, or of the
// small files that share a frame, fetch each frame once.
//
// It is the seam between SnapshotFS and the storage layout: nothing else
// in fs*.go touches the index, packs or frames, so the blob layer planned
// in issue 9 replaces this type alone. It is safe for concurrent use.
type blobReader struct {
	r      *Repository
	group  singleflight.Group // one fetch per frame at a time
	frames *lru[frameKey, *frame]
}

func newBlobReader(r *Repository) *blobReader {
	return &blobReader{r: r, frames: newLRU[frameKey, *frame](fsFrameCacheBytes)}
}

// frameKey names a frame: its pack and its offset in the pack.
type frameKey struct {
	pack chunk.ID
	off  uint32
}

// frame is one decoded frame and the blobs in it already checked.
type frame struct {
	plain []byte // read-only once built

	mu       sync.Mutex // guards verified
	verified map[blobAt]bool
}

// blobAt is one blob's place in a frame; what a check vouches for.
type blobAt struct {
	id     chunk.ID
	off, n uint32
}

// locate returns where data blob id is stored (ErrBlobNotFound when no
// index lists it, pack.ErrCorrupt when it is listed as a tree).
func (b *blobReader) locate(id chunk.ID) (pack.Entry, error) {
	e, ok := b.r.idx.lookup(id)
	if !ok {
		return pack.Entry{}, fmt.Errorf("%w: chunk %s", ErrBlobNotFound, id.Str())
	}
	if e.Type != pack.DataBlob {
		return pack.Entry{}, fmt.Errorf("repo: chunk %s is not a data blob: %w", id.Str(), pack.ErrCorrupt)
	}
	return e, nil
}

// blob returns the plain bytes of the blob at e, checked against e.ID
// (pack.ErrCorrupt, naming the pack, if they do not match). The result
// aliases a cached frame: callers copy from it and never write to it.
func (b *blobReader) blob(ctx context.Context, e pack.Entry) ([]byte, error) {
	fr, err := b.frame(ctx, e)
	if err != nil {
		return nil, err
	}
	k := blobAt{id: e.ID, off: e.Offset, n: e.Length}
	fr.mu.Lock()
	ok := fr.verified[k]
	fr.mu.Unlock()
	if ok {
		return fr.plain[e.Offset : e.Offset+e.Length], nil
	}
	data, err := pack.Blob(fr.plain, e) // bounds and BLAKE3
	if err != nil {
		return nil, fmt.Errorf("repo: pack %s: %w", packName(e.Pack), err)
	}
	fr.mu.Lock()
	fr.verified[k] = true
	fr.mu.Unlock()
	return data, nil
}

// frame returns e's decoded frame from the cache, or fetches it.
// Concurrent callers that need the same frame share one fetch.
func (b *blobReader) frame(ctx context.Context, e pack.Entry) (*frame, error) {
	key := frameKey{pack: e.Pack, off: e.Frame.Offset}
	if fr, ok := b.frames.get(key); ok {
		return fr, nil
	}
	v, err, _ := b.group.Do(fmt.Sprintf("%s@%d", e.Pack, e.Frame.Offset), func() (any, error) {
		if fr, ok := b.frames.get(key); ok {
			return fr, nil // a fetch that just finished
		}
		plain, err := b.r.loadFrame(ctx, e)
		if err != nil {
			return nil, err
		}
		fr := &frame{plain: plain, verified: make(map[blobAt]bool)}
		b.frames.add(key, fr, len(plain))
		return fr, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*frame), nil
}

// loadFrame fetches the frame of entry e with one range read and decodes
// it. The blobs in it are not checked yet (pack.Blob does that).
func (r *Repository) loadFrame(ctx context.Context, e pack.Entry) ([]byte, error) {
	name := packName(e.Pack)
	var stored []byte
	if e.Frame.Length > 0 { // a Load of length 0 would mean the whole pack
		var err error
		stored, err = store.LoadAll(ctx, r.st, name, int64(e.Frame.Offset), int64(e.Frame.Length))
		if err != nil {
			return nil, fmt.Errorf("repo: read pack %s: %w", name, err)
		}
	}
	plain, err := pack.DecodeFrame(r.dec, e.Frame, stored, nil)
	if err != nil {
		return nil, fmt.Errorf("repo: pack %s: %w", name, err)
	}
	return plain, nil
}

// lru is a cache bounded by the sum of its entries' costs, least recently
// used out first. The newest entry is kept even when it alone costs more
// than the limit, so a caller always finds what it just added. It is safe
// for concurrent use.
type lru[K comparable, V any] struct {
	mu    sync.Mutex // guards the fields below
	limit int
	used  int
	order *list.List // of *lruItem[K, V], most recently used first
	items map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

func newLRU[K comparable, V any](limit int) *lru[K, V] {
	return &lru[K, V]{limit: limit, order: list.New(), items: make(map[K]*list.Element)}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruItem[K, V]).val, true
}

// add puts v under k (replacing an entry already there) and evicts the
// least recently used entries until the costs fit the limit.
func (c *lru[K, V]) add(k K, v V, cost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.used -= el.Value.(*lruItem[K, V]).cost
		c.order.Remove(el)
	}
	c.items[k] = c.order.PushFront(&lruItem[K, V]{key: k, val: v, cost: cost})
	c.used += cost
	for c.used > c.limit && c.order.Len() > 1 {
		old := c.order.Back()
		it := old.Value.(*lruItem[K, V])
		c.order.Remove(old)
		delete(c.items, it.key)
		c.used -= it.cost
	}
}

// len returns the number of entries, for tests.
func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
