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

// condemn finds the packs no live snapshot needs and records them as a new
// condemned set: packs whose blobs are all dead or all have their home
// copy elsewhere, orphan packs (no index lists them) older than the lease
// TTL (a crashed writer's uploads), and packs repacked because their live
// fraction is below the threshold. The set is written with a new
// generation, then sealed with the leases that exist after that write:
// any writer not among them read gc/state after the set existed, and so
// never reuses its blobs.
func (c *collector) condemn(ctx context.Context) error {
	inSet := c.state.condemnedPacks()
	// Each live blob gets one home: its first copy in a pack that exists
	// and is not condemned. A pack's live bytes are those of the blobs it
	// is home to, so duplicate copies elsewhere count as dead.
	live := make(map[chunk.ID]uint64)
	homed := make(map[chunk.ID][]*pack.Entry)
	for id := range c.reach {
		for _, e := range c.locs[id] {
			if _, ok := c.packs[e.Pack]; ok && !inSet[e.Pack] {
				live[e.Pack] += uint64(e.Length)
				homed[e.Pack] = append(homed[e.Pack], e)
				break
			}
		}
	}
	total := make(map[chunk.ID]uint64)
	rep := make(map[chunk.ID]bool) // packs to repack
	for p, entries := range c.byPack {
		if _, ok := c.packs[p]; !ok || inSet[p] {
			continue
		}
		for _, e := range entries {
			total[p] += uint64(e.Length)
		}
		if live[p] > 0 && c.opts.RepackThreshold > 0 && float64(live[p]) < c.opts.RepackThreshold*float64(total[p]) {
			rep[p] = true
		}
	}
	// A live blob homed in a pack to repack moves its home to a copy
	// outside those packs, if it has one, rather than being copied again
	// (the copies of an earlier, interrupted repack are found this way).
	for p := range rep {
		kept := homed[p][:0]
		for _, e := range homed[p] {
			i := slices.IndexFunc(c.locs[e.ID], func(o *pack.Entry) bool {
				_, ok := c.packs[o.Pack]
				return ok && !inSet[o.Pack] && !rep[o.Pack]
			})
			if i < 0 {
				kept = append(kept, e)
				continue
			}
			o := c.locs[e.ID][i]
			live[p] -= uint64(e.Length)
			live[o.Pack] += uint64(o.Length)
			homed[o.Pack] = append(homed[o.Pack], o)
		}
		homed[p] = kept
	}
	var dead, repack []chunk.ID
	for p := range total {
		switch {
		case live[p] == 0:
			dead = append(dead, p)
		case rep[p]:
			repack = append(repack, p)
		}
	}
	for p, fi := range c.packs {
		if _, indexed := c.byPack[p]; !indexed && !inSet[p] && c.now.Sub(fi.ModTime) > c.r.opts.LeaseTTL {
			dead = append(dead, p)
		}
	}
	sortIDs(dead)
	sortIDs(repack)
	made, err := c.repack(ctx, repack, homed)
	if err != nil {
		return err
	}
	// A repack's output may have the ID of a pack found dead or repacked
	// above (the same blobs packed the same way): that pack is now live.
	dead = slices.DeleteFunc(dead, func(p chunk.ID) bool { return made[p] })
	repack = slices.DeleteFunc(repack, func(p chunk.ID) bool { return made[p] })
	condemned := append(dead, repack...)
	c.rep.PacksCondemned = len(condemned)
	if len(condemned) == 0 || c.opts.DryRun {
		return nil
	}
	c.state.Generation++
	c.state.Condemned = append(c.state.Condemned, condemnedSet{Generation: c.state.Generation, At: c.now, Packs: condemned})
	if err := c.writeState(ctx); err != nil {
		return err
	}
	c.r.idx.setGC(c.state.Generation, c.state.condemnedPacks())
	leases, err := c.r.listLeases(ctx, c.now)
	if err != nil {
		return err
	}
	c.leases = leases
	last := &c.state.Condemned[len(c.state.Condemned)-1]
	last.Leases, last.Sealed = c.leaseRefs(), true
	return c.writeState(ctx)
}

// repack copies the live blobs homed in packs into new packs, uploads
// them and writes an index delta listing them, before the old packs are
// condemned: writers then find the new copies (index.lookup prefers
// them) and gc's later deletion check finds a copy outside the old pack.
func (c *collector) repack(ctx context.Context, packs []chunk.ID, homed map[chunk.ID][]*pack.Entry) (made map[chunk.ID]bool, _ error) {
	made = make(map[chunk.ID]bool)
	if len(packs) == 0 {
		return made, nil
	}
	c.rep.PacksRepacked = len(packs)
	for _, p := range packs {
		for _, e := range homed[p] {
			c.rep.BytesRepacked += int64(e.Length)
		}
	}
	if c.opts.DryRun {
		return made, nil
	}
	r := c.r
	target := map[pack.BlobType]int{pack.DataBlob: r.cfg.DataPackSize, pack.TreeBlob: r.cfg.TreePackSize}
	ws := map[pack.BlobType]*pack.Writer{}
	defer func() {
		for _, w := range ws {
			w.Abort()
		}
	}()
	var entries []pack.Entry
	flush := func(t pack.BlobType) error {
		w := ws[t]
		delete(ws, t)
		p, err := w.Finish()
		if err == nil {
			p, err = r.uniquePack(p)
		}
		if err != nil {
			return fmt.Errorf("repo: gc: finish pack: %w", err)
		}
		if err := r.st.Save(ctx, packName(p.ID), p.Data, store.SaveOptions{}); err != nil {
			return fmt.Errorf("repo: gc: upload pack %s: %w", packName(p.ID), err)
		}
		made[p.ID] = true
		entries = append(entries, p.Entries...)
		return nil
	}
	for _, p := range packs {
		types := map[pack.BlobType]bool{}
		for _, e := range homed[p] {
			types[e.Type] = true
		}
		for t := range types {
			blobs, err := r.loadPackBlobs(ctx, p, t)
			if err != nil {
				return nil, fmt.Errorf("repo: gc: repack: %w", err)
			}
			for _, e := range homed[p] {
				if e.Type != t {
					continue
				}
				data, ok := blobs[e.ID]
				if !ok {
					return nil, fmt.Errorf("repo: gc: repack: pack %s lacks blob %s its index lists: %w", p.Str(), e.ID.Str(), pack.ErrCorrupt)
				}
				w := ws[t]
				if w == nil {
					w = r.newPackWriter(target[t])
					ws[t] = w
				}
				if err := w.Add(e.ID, t, data); err != nil {
					return nil, fmt.Errorf("repo: gc: pack blob %s: %w", e.ID.Str(), err)
				}
				if w.Size() >= target[t] {
					if err := flush(t); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	for _, t := range []pack.BlobType{pack.DataBlob, pack.TreeBlob} {
		if ws[t] != nil {
			if err := flush(t); err != nil {
				return nil, err
			}
		}
	}
	if len(entries) == 0 {
		return made, nil
	}
	data, err := pack.EncodeIndex(entries)
	if err != nil {
		return nil, fmt.Errorf("repo: gc: encode index: %w", err)
	}
	name := indexPrefix + chunk.Hash(data).String()
	if err := r.st.Save(ctx, name, data, store.SaveOptions{}); err != nil {
		return nil, fmt.Errorf("repo: gc: write index %s: %w", name, err)
	}
	r.idx.add(name, entries)
	return made, nil
}

func sortIDs(ids []chunk.ID) {
	slices.SortFunc(ids, func(a, b chunk.ID) int { return bytes.Compare(a[:], b[:]) })
}
