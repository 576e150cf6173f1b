package pack

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/chunk"
)

// indexEntries returns the entries of three packs with small, large, raw
// and empty blobs.
func indexEntries(t *testing.T) []Entry {
	t.Helper()
	enc := newTestEncoder(t)
	r := &splitmix{s: 21}
	var all []Entry
	for i := range 3 {
		var blobs []blob
		for j := range 30 {
			switch j % 10 {
			case 3:
				blobs = append(blobs, blob{DataBlob, randomBytes(r, 1+r.intn(20000))})
			case 7:
				blobs = append(blobs, blob{DataBlob, nil})
			default:
				blobs = append(blobs, blob{BlobType(1 + i%2), jsText(r, 1+r.intn(6000))})
			}
		}
		all = append(all, writePack(t, enc, Options{FrameSize: 16 << 10}, blobs).Entries...)
	}
	return all
}

func TestIndexRoundTrip(t *testing.T) {
	entries := indexEntries(t)
	want := slices.Clone(entries)
	slices.SortFunc(want, func(a, b Entry) int { return compareEntries(&a, &b) })

	before := slices.Clone(entries)
	enc, err := EncodeIndex(entries)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(entries, before) {
		t.Errorf("EncodeIndex modified its input")
	}
	got, err := DecodeIndex(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("decoded %d entries, differ from the %d sorted entries", len(got), len(want))
	}
	// The encoding is a function of the set of entries: order and exact
	// duplicates do not matter.
	r := &splitmix{s: 4}
	shuffled := append(slices.Clone(entries), entries[5], entries[17])
	for i := len(shuffled) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	enc2, err := EncodeIndex(shuffled)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, enc2) {
		t.Errorf("encoding depends on input order or duplicates")
	}
	// An ID costs 32 bytes; the rest of an entry should be a few bytes.
	if perEntry := float64(len(enc)) / float64(len(entries)); perEntry > 42 {
		t.Errorf("%.1f bytes per entry; want at most 42", perEntry)
	}
}

func TestIndexEmpty(t *testing.T) {
	b, err := EncodeIndex(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := []byte{Version, 0}; !bytes.Equal(b, got) {
		t.Errorf("EncodeIndex(nil) = %x; want %x", b, got)
	}
	entries, err := DecodeIndex(b)
	if err != nil || len(entries) != 0 {
		t.Errorf("DecodeIndex = %v, %v; want no entries", entries, err)
	}
}

func TestEncodeIndexInvalid(t *testing.T) {
	pack := chunk.Hash([]byte("pack"))
	f := Frame{Offset: 100, Length: 50, RawLength: 200, Compressed: true}
	ok := Entry{ID: chunk.Hash([]byte("a")), Type: DataBlob, Pack: pack, Frame: f, Offset: 10, Length: 20}
	with := func(change func(e *Entry)) Entry { e := ok; change(&e); return e }
	tests := []struct {
		name    string
		entries []Entry
	}{
		{"zero pack", []Entry{with(func(e *Entry) { e.Pack = chunk.ID{} })}},
		{"bad type", []Entry{with(func(e *Entry) { e.Type = 9 })}},
		{"blob outside frame", []Entry{with(func(e *Entry) { e.Offset = 190 })}},
		{"raw frame lengths differ", []Entry{with(func(e *Entry) { e.Frame.Compressed = false })}},
		{"frame too large", []Entry{with(func(e *Entry) { e.Frame.RawLength = MaxBlobSize + 1 })}},
		{"frame end overflows", []Entry{with(func(e *Entry) { e.Frame.Offset = ^uint32(0) - 10 })}},
		{"frames disagree", []Entry{ok, with(func(e *Entry) { e.Frame.RawLength = 300 })}},
		{"frames overlap", []Entry{ok, with(func(e *Entry) { e.Frame.Offset = 120 })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EncodeIndex(tt.entries)
			wantErr(t, err, ErrCorrupt)
		})
	}
	// Frames of different packs may overlap, and an empty frame may share
	// its offset with the next.
	other := with(func(e *Entry) { e.Pack = chunk.Hash([]byte("other")); e.Frame.Offset = 120 })
	empty := Entry{ID: chunk.Hash(nil), Type: DataBlob, Pack: pack, Frame: Frame{Offset: 100}}
	if _, err := EncodeIndex([]Entry{ok, other, empty}); err != nil {
		t.Errorf("EncodeIndex(valid) = %v", err)
	}
}

func TestDecodeIndexCorrupt(t *testing.T) {
	good, err := EncodeIndex(indexEntries(t)[:40])
	if err != nil {
		t.Fatal(err)
	}
	// Every proper prefix is refused.
	for n := range len(good) {
		if _, err := DecodeIndex(good[:n]); err == nil {
			t.Fatalf("prefix of %d of %d bytes decoded", n, len(good))
		}
	}
	// Every flipped bit is refused or decodes to entries that encode to
	// exactly the flipped bytes (the encoding is canonical).
	for i := range good {
		for bit := range 8 {
			b := bytes.Clone(good)
			b[i] ^= 1 << bit
			entries, err := DecodeIndex(b)
			if err != nil {
				continue
			}
			again, err := EncodeIndex(entries)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("byte %d bit %d flipped: decoded but re-encodes differently (%v)", i, bit, err)
			}
		}
	}

	pack := chunk.Hash([]byte("p"))
	id := chunk.Hash([]byte("b"))
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"version 0", append([]byte{0}, good[1:]...), ErrVersion},
		{"version 2", append([]byte{2}, good[1:]...), ErrVersion},
		{"trailing byte", append(bytes.Clone(good), 0), ErrCorrupt},
		{"non-minimal pack count", []byte{Version, 0x80, 0x00}, ErrCorrupt},
		{"huge pack count", []byte{Version, 0xff, 0xff, 0xff, 0x0f}, ErrCorrupt},
		{"zero pack", idx(chunk.ID{}, id, 1), ErrCorrupt},
		{"pack without frames", append(append([]byte{Version, 1}, pack[:]...), 0, 0), ErrCorrupt},
		{"sanity: hand-made index decodes", idx(pack, id, 1), nil},
		{"bad type", idx(pack, id, 3), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeIndex(tt.data)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tt.want)
			if !strings.HasPrefix(err.Error(), "pack: decode index") {
				t.Errorf("error %q lacks context", err)
			}
		})
	}

	// Packs out of order and blobs out of order are refused, though each
	// is well formed.
	a, b := chunk.ID{1}, chunk.ID{2}
	twoPacks := func(first, second chunk.ID) []byte {
		one, two := idx(first, id, 1), idx(second, id, 1)
		return append(append([]byte{Version, 2}, one[2:]...), two[2:]...)
	}
	if _, err := DecodeIndex(twoPacks(a, b)); err != nil {
		t.Errorf("packs in order: %v", err)
	}
	for name, data := range map[string][]byte{"packs out of order": twoPacks(b, a), "pack twice": twoPacks(a, a)} {
		if _, err := DecodeIndex(data); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// idx hand-encodes an index of one pack with one raw frame of 10 bytes
// holding one blob of 4 bytes of type typ.
func idx(pack, id chunk.ID, typ byte) []byte {
	b := append([]byte{Version, 1}, pack[:]...)
	b = append(b, 1, 0, 0, 10) // one frame: gap 0, raw, length 10
	b = append(b, 1)           // one blob
	b = append(b, id[:]...)
	return append(b, typ, 0, 2, 4) // frame 0, offset 2, length 4
}
