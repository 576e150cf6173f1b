package repo

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
)

// The writer's half of the gc protocol (doc.go, "Garbage collection"):
//
//  1. write a lease, then read gc/state (refreshGCView): blobs whose every
//     copy is in a condemned pack count as absent, so they are uploaded
//     again rather than deduplicated against;
//  2. remember every blob taken from the repository instead of uploaded
//     (b.reused: chunks markNew found in the index, file contents reuse
//     took over from the parent, trees that existed already);
//  3. before the index delta, read gc/state again (reuploadCondemned):
//     every reused blob that gc has condemned since is copied into a
//     pack of this backup (its old pack still exists: gc deletes it only
//     after this writer's lease has ended);
//  4. write the index delta, then the snapshot, then remove the lease.

// noteReused records blobs this backup takes from the repository.
func (b *backup) noteReused(ids ...chunk.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		b.reused[id] = struct{}{}
	}
}

// reuploadCondemned reads gc/state again and copies every reused blob
// whose every known copy gc has condemned into new packs of this backup,
// whose entries join b.entries.
func (b *backup) reuploadCondemned(ctx context.Context) error {
	if _, err := b.r.refreshGCView(ctx); err != nil {
		return err
	}
	var need []pack.Entry
	b.mu.Lock()
	for id := range b.reused {
		if _, ok := b.added[id]; ok || b.r.idx.has(id) {
			continue
		}
		e, ok := b.r.idx.lookup(id)
		if !ok {
			b.mu.Unlock()
			return fmt.Errorf("%w: blob %s this backup reused is gone from the index (gc deleted its pack?); nothing committed", ErrBlobNotFound, id.Str())
		}
		need = append(need, e)
	}
	b.mu.Unlock()
	if len(need) == 0 {
		return nil
	}
	b.r.opts.Logf("gc condemned %d blobs this backup reused; uploading them again", len(need))
	// By pack and offset, so that neighbouring blobs share frame reads.
	slices.SortFunc(need, func(x, y pack.Entry) int {
		if c := bytes.Compare(x.Pack[:], y.Pack[:]); c != 0 {
			return c
		}
		return int(x.Frame.Offset) - int(y.Frame.Offset)
	})
	ws := map[pack.BlobType]*pack.Writer{}
	target := map[pack.BlobType]int{pack.DataBlob: b.r.cfg.DataPackSize, pack.TreeBlob: b.r.cfg.TreePackSize}
	defer func() {
		for _, w := range ws {
			w.Abort()
		}
	}()
	flush := func(t pack.BlobType) error {
		w := ws[t]
		delete(ws, t)
		p, err := w.Finish()
		if err == nil {
			p, err = b.r.uniquePack(p)
		}
		if err != nil {
			return fmt.Errorf("repo: finish pack: %w", err)
		}
		if err := b.r.st.Save(ctx, packName(p.ID), p.Data, store.SaveOptions{}); err != nil {
			return fmt.Errorf("repo: upload pack %s: %w", packName(p.ID), err)
		}
		b.packs.Add(1)
		b.uploaded.Add(uint64(len(p.Data)))
		b.mu.Lock()
		b.entries = append(b.entries, p.Entries...)
		b.mu.Unlock()
		return nil
	}
	for _, e := range need {
		data, err := b.r.loadBlob(ctx, e)
		if err != nil {
			return fmt.Errorf("repo: re-upload blob %s that gc condemned: %w", e.ID.Str(), err)
		}
		w := ws[e.Type]
		if w == nil {
			w = b.r.newPackWriter(target[e.Type])
			ws[e.Type] = w
		}
		if err := w.Add(e.ID, e.Type, data); err != nil {
			return fmt.Errorf("repo: pack blob %s: %w", e.ID.Str(), err)
		}
		if w.Size() >= target[e.Type] {
			if err := flush(e.Type); err != nil {
				return err
			}
		}
	}
	for _, t := range []pack.BlobType{pack.DataBlob, pack.TreeBlob} {
		if ws[t] != nil {
			if err := flush(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// saltSize is the length of the random blob that makes a pack unique.
const saltSize = 32

// uniquePack returns p, or p rebuilt with one more blob of random bytes
// when gc has condemned a pack with p's ID. Packs are named by their
// content, so a writer that packs exactly the blobs of a condemned pack,
// in the same order, would otherwise re-create the very object gc is about
// to delete (it does so only for packs condemned before the writer read
// gc/state, whose deletion its lease does not hold back). The salt blob is
// indexed and reached by nothing; gc collects it with its pack later.
func (r *Repository) uniquePack(p pack.Packed) (pack.Packed, error) {
	if !r.idx.isCondemned(p.ID) || len(p.Entries) == 0 {
		return p, nil
	}
	w := r.newPackWriter(len(p.Data) + saltSize)
	var (
		frame []byte
		cur   pack.Frame
		err   error
	)
	for i, e := range p.Entries {
		if i == 0 || e.Frame != cur {
			cur = e.Frame
			frame, err = pack.DecodeFrame(r.dec, e.Frame, p.Data[e.Frame.Offset:e.Frame.End()], nil)
			if err != nil {
				w.Abort()
				return pack.Packed{}, fmt.Errorf("repo: repack %s: %w", p.ID.Str(), err)
			}
		}
		b, err := pack.Blob(frame, e)
		if err == nil {
			err = w.Add(e.ID, e.Type, b)
		}
		if err != nil {
			w.Abort()
			return pack.Packed{}, fmt.Errorf("repo: repack %s: %w", p.ID.Str(), err)
		}
	}
	salt := []byte(newWriterID() + newWriterID())[:saltSize]
	if err := w.Add(chunk.Hash(salt), p.Entries[0].Type, salt); err != nil {
		w.Abort()
		return pack.Packed{}, fmt.Errorf("repo: salt pack: %w", err)
	}
	return w.Finish()
}
