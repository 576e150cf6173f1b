package repo

import (
	"bytes"
	"context"
	"errors"
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

// healRead runs read, which reads object name from st and verifies what
// it got. When the bytes fail verification (pack.ErrCorrupt), the copy st
// served may be what is damaged rather than the object (a host cache's
// file that rotted on this disk while the store holds a good one): the
// copy is dropped (store.Invalidate, nothing for a store without copies),
// the event is logged, and read runs once more. A second failure is the
// object's own corruption and is returned as it is.
func healRead(ctx context.Context, st store.Store, logf func(string, ...any), name string, read func() error) error {
	err := read()
	if !errors.Is(err, pack.ErrCorrupt) {
		return err
	}
	if ierr := store.Invalidate(ctx, st, name); ierr != nil {
		logf("%s failed verification (%v), and dropping a cached copy failed: %v", name, err, ierr)
		return err
	}
	logf("%s failed verification (%v); dropped any cached copy and reading it again", name, err)
	if err := read(); err != nil {
		return err
	}
	logf("%s read again from the store: sound", name)
	return nil
}

// loadPackBlobs reads a whole pack with one GET, checks its name against
// its bytes, and returns every blob of type t in it, verified. A pack
// that fails the check is read once more (healRead).
func (r *Repository) loadPackBlobs(ctx context.Context, id chunk.ID, t pack.BlobType) (map[chunk.ID][]byte, error) {
	name := packName(id)
	var data []byte
	err := healRead(ctx, r.st, r.opts.Logf, name, func() error {
		var err error
		if data, err = store.LoadAll(ctx, r.st, name, 0, 0); err != nil {
			return fmt.Errorf("repo: read pack %s: %w", name, err)
		}
		if chunk.Hash(data) != id {
			return fmt.Errorf("repo: pack %s: %w: content does not match its name", name, pack.ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return nil, err
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

// loadBlob fetches one blob with a range read of its frame, verified; a
// blob that fails verification is read once more (healRead).
func (r *Repository) loadBlob(ctx context.Context, e pack.Entry) ([]byte, error) {
	name := packName(e.Pack)
	var b []byte
	err := healRead(ctx, r.st, r.opts.Logf, name, func() error {
		var stored []byte
		if e.Frame.Length > 0 { // a Load of length 0 would read the whole pack
			var err error
			if stored, err = store.LoadAll(ctx, r.st, name, int64(e.Frame.Offset), int64(e.Frame.Length)); err != nil {
				return fmt.Errorf("repo: read pack %s: %w", name, err)
			}
		}
		frame, err := pack.DecodeFrame(r.dec, e.Frame, stored, nil)
		if err == nil {
			b, err = pack.Blob(frame, e)
		}
		if err != nil {
			return fmt.Errorf("repo: pack %s: %w", name, err)
		}
		b = bytes.Clone(b) // not the whole frame's memory
		return nil
	})
	return b, err
}
