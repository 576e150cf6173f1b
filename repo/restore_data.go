package repo

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
)

// Range planning. Neighbouring frames of one pack are read with one range
// request when the gap between them is small: downloading a gap costs far
// less than a request (R2 bills per request, and each has a round trip), so
// a full restore reads each pack with one GET. The range is streamed a
// frame at a time, so its length does not bound memory; the cap only
// limits what a retry has to download again.
const (
	maxRangeGap = 1 << 20
	maxRange    = 64 << 20
	// maxOpenFiles bounds the files kept open between writes of their
	// chunks; above it a file is closed after each write.
	maxOpenFiles = 256
)

// target is one place a blob is written to.
type target struct {
	f   *rfile
	off int64
}

// blobNeed is a blob and everywhere it goes.
type blobNeed struct {
	e       pack.Entry
	targets []target
}

// frameNeed is a frame of a pack and the needed blobs inside it.
type frameNeed struct {
	f     pack.Frame
	blobs []*blobNeed
}

// packRange is one range read: consecutive frames of one pack.
type packRange struct {
	pack     chunk.ID
	off, end uint32
	frames   []frameNeed
}

// frameJob hands a frame's stored bytes from a fetcher to a writer.
type frameJob struct {
	rg     *packRange
	fn     *frameNeed
	stored *[]byte
}

// planData groups the blobs that the files to write need by pack and
// frame, and merges neighbouring frames into ranges.
func (x *restorer) planData() ([]*packRange, error) {
	needs := make(map[chunk.ID]*blobNeed)
	for _, f := range x.files {
		if !f.write {
			continue
		}
		var off int64
		for _, id := range f.node.Content {
			n, ok := needs[id]
			if !ok {
				e, found := x.r.idx.lookup(id)
				if !found {
					return nil, fmt.Errorf("%w: chunk %s of %q", ErrBlobNotFound, id.Str(), f.display())
				}
				n = &blobNeed{e: e}
				needs[id] = n
			}
			n.targets = append(n.targets, target{f: f, off: off})
			off += int64(n.e.Length)
		}
	}
	byPack := make(map[chunk.ID][]*blobNeed)
	for _, n := range needs {
		byPack[n.e.Pack] = append(byPack[n.e.Pack], n)
	}
	var ranges []*packRange
	for p, ns := range byPack {
		slices.SortFunc(ns, func(a, b *blobNeed) int {
			if c := cmp.Compare(a.e.Frame.Offset, b.e.Frame.Offset); c != 0 {
				return c
			}
			if c := cmp.Compare(a.e.Frame.Length, b.e.Frame.Length); c != 0 {
				return c
			}
			return cmp.Compare(a.e.Offset, b.e.Offset)
		})
		var rg *packRange
		for _, n := range ns {
			fr := n.e.Frame
			if rg != nil {
				last := &rg.frames[len(rg.frames)-1]
				if last.f == fr {
					last.blobs = append(last.blobs, n)
					continue
				}
				// Overlapping frames (an inconsistent index) are read
				// separately rather than trusted to stream in order.
				if fr.Offset < rg.end || fr.Offset-rg.end > maxRangeGap || fr.End()-rg.off > maxRange {
					rg = nil
				}
			}
			if rg == nil {
				rg = &packRange{pack: p, off: fr.Offset, end: fr.Offset}
				ranges = append(ranges, rg)
			}
			rg.frames = append(rg.frames, frameNeed{f: fr, blobs: []*blobNeed{n}})
			rg.end = fr.End()
		}
	}
	slices.SortFunc(ranges, func(a, b *packRange) int {
		if c := bytes.Compare(a.pack[:], b.pack[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.off, b.off)
	})
	return ranges, nil
}

// data fetches every range with r.opts.Uploads concurrent requests and
// writes the blobs on a pool of writers, which decompress, verify and
// write with positional writes, so files fill in any order.
func (x *restorer) data(ctx context.Context) error {
	ranges, err := x.planData()
	if err != nil {
		return err
	}
	if len(ranges) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan frameJob, 2*x.r.opts.Workers)
	h := &frameHealer{x: x}
	for range x.r.opts.Workers {
		g.Go(func() error { return x.writer(gctx, jobs, h) })
	}
	g.Go(func() error {
		defer close(jobs)
		fg, fctx := errgroup.WithContext(gctx)
		fg.SetLimit(x.r.opts.Uploads)
		for _, rg := range ranges {
			fg.Go(func() error {
				if err := fctx.Err(); err != nil {
					return err
				}
				return x.fetch(fctx, rg, jobs)
			})
		}
		return fg.Wait()
	})
	err = g.Wait()
	x.closeFiles()
	return err
}

// closeFiles closes files left open by a failed data phase.
func (x *restorer) closeFiles() {
	for _, f := range x.files {
		f.mu.Lock()
		if f.fd >= 0 {
			unix.Close(f.fd)
			f.fd = -1
			x.openFiles.Add(-1)
		}
		f.mu.Unlock()
	}
}

// packErr names the pack and a file that needed it.
func packErr(rg *packRange, err error) error {
	return fmt.Errorf("pack %s (needed by %q): %w", packName(rg.pack), rg.frames[0].blobs[0].targets[0].f.display(), err)
}

// fetch reads one range and hands its frames to the writers. A retrying
// store may call the callback again; frames already handed on are then
// skipped, not written twice.
func (x *restorer) fetch(ctx context.Context, rg *packRange, jobs chan<- frameJob) error {
	sent := 0
	read := func(rd io.Reader) error {
		cr := &countingReader{r: rd, n: &x.bytesFetched}
		pos := rg.off
		for i := range rg.frames {
			fn := &rg.frames[i]
			if gap := int64(fn.f.Offset - pos); gap > 0 {
				if _, err := io.CopyN(io.Discard, cr, gap); err != nil {
					return fmt.Errorf("read at %d: %w", pos, eofIsUnexpected(err))
				}
			}
			pos = fn.f.End()
			if i < sent {
				if _, err := io.CopyN(io.Discard, cr, int64(fn.f.Length)); err != nil {
					return fmt.Errorf("read frame at %d: %w", fn.f.Offset, eofIsUnexpected(err))
				}
				continue
			}
			buf := x.getBuf(int(fn.f.Length))
			if _, err := io.ReadFull(cr, *buf); err != nil {
				x.bufs.Put(buf)
				return fmt.Errorf("read frame at %d: %w", fn.f.Offset, eofIsUnexpected(err))
			}
			select {
			case jobs <- frameJob{rg: rg, fn: fn, stored: buf}:
				sent++
			case <-ctx.Done():
				x.bufs.Put(buf)
				return ctx.Err()
			}
		}
		return nil
	}
	var err error
	if rg.end == rg.off {
		// Only empty frames (an odd but valid index): a Load of length 0
		// would mean the whole pack.
		err = read(bytes.NewReader(nil))
	} else {
		x.packsFetched.Add(1)
		err = x.r.st.Load(ctx, packName(rg.pack), int64(rg.off), int64(rg.end-rg.off), read)
	}
	if err != nil {
		return packErr(rg, err)
	}
	return nil
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return fmt.Errorf("%w: truncated", io.ErrUnexpectedEOF)
	}
	return err
}

func (x *restorer) getBuf(n int) *[]byte {
	if b, ok := x.bufs.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

// writer decodes frames, verifies each blob against its ID and writes it
// wherever it goes. A frame that fails verification is read once more
// (frameHealer) before the restore fails.
func (x *restorer) writer(ctx context.Context, jobs <-chan frameJob, h *frameHealer) error {
	var plain []byte
	var blobs [][]byte
	for job := range jobs {
		if err := ctx.Err(); err != nil {
			x.bufs.Put(job.stored)
			return err
		}
		var err error
		plain, blobs, err = x.openFrame(job.fn, *job.stored, plain[:0], blobs[:0])
		x.bufs.Put(job.stored)
		if errors.Is(err, pack.ErrCorrupt) {
			plain, blobs, err = h.reread(ctx, job.rg.pack, job.fn, err, plain[:0], blobs[:0])
		}
		if err != nil {
			return fmt.Errorf("pack %s (needed by %q): %w", packName(job.rg.pack), job.fn.blobs[0].targets[0].f.display(), err)
		}
		for i, b := range job.fn.blobs {
			// Checked once per blob, not per place it goes: a file of a
			// million identical zero chunks costs a million skips.
			zero := allZero(blobs[i])
			for _, t := range b.targets {
				if err := x.writeTo(t, blobs[i], zero); err != nil {
					return fmt.Errorf("write %q: %w", t.f.display(), err)
				}
			}
		}
	}
	return nil
}

// openFrame decodes a frame's stored bytes into plain and appends to blobs
// the bytes of each blob fn needs, verified against its ID. Errors wrap
// pack.ErrCorrupt when the bytes are bad.
func (x *restorer) openFrame(fn *frameNeed, stored, plain []byte, blobs [][]byte) ([]byte, [][]byte, error) {
	plain, err := pack.DecodeFrame(x.r.dec, fn.f, stored, plain)
	if err != nil {
		return plain, blobs, err
	}
	for _, b := range fn.blobs {
		data, err := pack.Blob(plain, b.e)
		if err != nil {
			return plain, blobs, err
		}
		blobs = append(blobs, data)
	}
	return plain, blobs, nil
}

// frameHealer reads again the frames that failed verification during one
// data phase. The copy that the store served may be what is damaged (a
// host cache's file that rotted on this disk) rather than the pack, so the
// pack's copy is dropped (store.Invalidate), once per pack: frames still
// streaming from the old copy fail too, and each must then read the new
// copy rather than drop it again. A frame that fails twice is the pack's
// own corruption.
type frameHealer struct {
	x           *restorer
	invalidated sync.Map // chunk.ID of the packs whose copies were dropped
}

// reread fetches frame fn of pack p again, alone, and opens it; cause is
// the verification failure, returned if the copy cannot be dropped.
func (h *frameHealer) reread(ctx context.Context, p chunk.ID, fn *frameNeed, cause error, plain []byte, blobs [][]byte) ([]byte, [][]byte, error) {
	x, name := h.x, packName(p)
	if _, done := h.invalidated.LoadOrStore(p, true); !done {
		if err := store.Invalidate(ctx, x.r.st, name); err != nil {
			x.r.opts.Logf("%s failed verification (%v), and dropping a cached copy failed: %v", name, cause, err)
			return plain, blobs, cause
		}
	}
	x.r.opts.Logf("%s: frame at %d failed verification (%v); dropped any cached copy and reading it again", name, fn.f.Offset, cause)
	var stored []byte
	if fn.f.Length > 0 { // a Load of length 0 would read the whole pack
		var err error
		x.packsFetched.Add(1)
		stored, err = store.LoadAll(ctx, x.r.st, name, int64(fn.f.Offset), int64(fn.f.Length))
		x.bytesFetched.Add(uint64(len(stored)))
		if err != nil {
			return plain, blobs, fmt.Errorf("read again after %v: %w", cause, err)
		}
	}
	return x.openFrame(fn, stored, plain, blobs)
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	var zero [4 << 10]byte
	for len(b) > 0 {
		n := min(len(b), len(zero))
		if !bytes.Equal(b[:n], zero[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// writeTo writes one blob into its file, opening the file on first use
// and closing it after its last chunk. An all-zero blob (zero) is not
// written at all: the file was created at its full size as a hole (and
// the data phase writes only into such files), so it already reads as
// zeros there, and a terabyte hole costs no time.
func (x *restorer) writeTo(t target, data []byte, zero bool) error {
	f := t.f
	var err error
	if !zero {
		fd, oerr := x.acquire(f)
		if oerr != nil {
			return oerr
		}
		err = writeSparse(fd, data, t.off)
	}

	f.mu.Lock()
	if !zero {
		f.users--
	}
	// Only a placement written counts: a file whose write failed (no
	// space) stays unfinished, so that cleanup removes it.
	if err == nil {
		f.left--
	}
	done := err == nil && f.left == 0
	var cerr error
	if f.fd >= 0 && f.users == 0 && (done || err != nil || x.openFiles.Load() > maxOpenFiles) {
		cerr = unix.Close(f.fd)
		f.fd = -1
		x.openFiles.Add(-1)
	}
	if done && cerr != nil {
		f.left, done = 1, false // the last write may not have reached the disk
	}
	f.mu.Unlock()
	if err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	x.bytesWritten.Add(uint64(len(data)))
	x.progressBytes(int64(len(data)))
	if done {
		x.filesWritten.Add(1)
		x.progressFile(0)
	}
	return nil
}

// acquire opens f for writing if it is not open yet and counts the caller
// as one of its users, who must give it back (writeTo does).
func (x *restorer) acquire(f *rfile) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		fd, err := x.openBeneath(f.path(), unix.O_WRONLY, 0)
		if err != nil {
			return -1, err
		}
		f.fd = fd
		x.openFiles.Add(1)
	}
	f.users++
	return f.fd, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(uint64(n))
	return n, err
}
