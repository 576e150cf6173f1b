package repo

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
)

// treeCacheLimit bounds the encoded tree bytes kept in memory. Tree packs
// are small (a 35k-file node_modules tree encodes to a few MB), so one
// cache holds a whole snapshot's trees and each tree pack is fetched once.
const treeCacheLimit = 64 << 20

// treeCache loads tree blobs a whole pack at a time: a restore or a
// backup with a parent needs thousands of trees, and one range GET per
// tree would cost one request per directory.
type treeCache struct {
	r     *Repository
	group singleflight.Group

	mu    sync.Mutex // guards the fields below
	blobs map[chunk.ID][]byte
	size  int
}

func newTreeCache(r *Repository) *treeCache {
	return &treeCache{r: r, blobs: make(map[chunk.ID][]byte)}
}

func (c *treeCache) get(id chunk.ID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blobs[id]
	return b, ok
}

func (c *treeCache) put(blobs map[chunk.ID][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, b := range blobs {
		if c.size+len(b) > treeCacheLimit {
			// Dropping everything is crude but bounded; a working set
			// larger than the limit refetches tree packs.
			c.blobs = make(map[chunk.ID][]byte)
			c.size = 0
		}
		if _, ok := c.blobs[id]; !ok {
			c.blobs[id] = b
			c.size += len(b)
		}
	}
}

// loadTree returns the decoded tree id.
func (r *Repository) loadTree(ctx context.Context, id chunk.ID) (*manifest.Tree, error) {
	raw, err := r.tc.load(ctx, id)
	if err != nil {
		return nil, err
	}
	t, err := manifest.DecodeTree(raw)
	if err != nil {
		return nil, fmt.Errorf("repo: tree %s: %w", id.Str(), err)
	}
	return t, nil
}

func (c *treeCache) load(ctx context.Context, id chunk.ID) ([]byte, error) {
	if b, ok := c.get(id); ok {
		return b, nil
	}
	e, ok := c.r.idx.lookup(id)
	if !ok {
		return nil, fmt.Errorf("%w: tree %s", ErrBlobNotFound, id.Str())
	}
	if e.Type != pack.TreeBlob {
		return nil, fmt.Errorf("repo: blob %s is not a tree: %w", id.Str(), pack.ErrCorrupt)
	}
	_, err, _ := c.group.Do(e.Pack.String(), func() (any, error) {
		blobs, err := c.r.loadPackBlobs(ctx, e.Pack, pack.TreeBlob)
		if err != nil {
			return nil, err
		}
		c.put(blobs)
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	if b, ok := c.get(id); ok {
		return b, nil
	}
	// The cache was reset between the put and this get; fetch the one blob.
	return c.r.loadBlob(ctx, e)
}

// loadPackBlobs reads a whole pack with one GET, checks its name against
// its bytes, and returns every blob of type t in it, verified.
func (r *Repository) loadPackBlobs(ctx context.Context, id chunk.ID, t pack.BlobType) (map[chunk.ID][]byte, error) {
	name := packName(id)
	data, err := store.LoadAll(ctx, r.st, name, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("repo: read pack %s: %w", name, err)
	}
	if chunk.Hash(data) != id {
		return nil, fmt.Errorf("repo: pack %s: %w: content does not match its name", name, pack.ErrCorrupt)
	}
	entries, err := pack.ParseTrailer(id, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("repo: pack %s: %w", name, err)
	}
	out := make(map[chunk.ID][]byte)
	var frame []byte
	var cur pack.Frame
	for i, e := range entries {
		if e.Type != t {
			continue
		}
		if i == 0 || frame == nil || e.Frame != cur {
			cur = e.Frame
			frame, err = pack.DecodeFrame(r.dec, e.Frame, data[e.Frame.Offset:e.Frame.End()], frame[:0])
			if err != nil {
				return nil, fmt.Errorf("repo: pack %s: %w", name, err)
			}
		}
		b, err := pack.Blob(frame, e)
		if err != nil {
			return nil, fmt.Errorf("repo: pack %s: %w", name, err)
		}
		out[e.ID] = bytes.Clone(b)
	}
	return out, nil
}

// loadBlob fetches one blob with a range read of its frame.
func (r *Repository) loadBlob(ctx context.Context, e pack.Entry) ([]byte, error) {
	name := packName(e.Pack)
	stored, err := store.LoadAll(ctx, r.st, name, int64(e.Frame.Offset), int64(e.Frame.Length))
	if err != nil {
		return nil, fmt.Errorf("repo: read pack %s: %w", name, err)
	}
	frame, err := pack.DecodeFrame(r.dec, e.Frame, stored, nil)
	if err != nil {
		return nil, fmt.Errorf("repo: pack %s: %w", name, err)
	}
	b, err := pack.Blob(frame, e)
	if err != nil {
		return nil, fmt.Errorf("repo: pack %s: %w", name, err)
	}
	return bytes.Clone(b), nil
}
