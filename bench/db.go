package bench

import (
	"encoding/binary"
)

// PageSize is the page size of the "db" workload's file, as in SQLite.
const PageSize = 4096

// dbPage appends page number page of a SQLite-like database to g.out and
// returns g.out: a b-tree page header, a cell pointer array, free space of
// zeros and records packed at the end. version changes the records, as an
// update of the page does.
func dbPage(g *textGen, seed uint64, page int64, version uint64) []byte {
	g.setVocab(seed)
	g.pcg.Seed(seed+version*0x9e3779b97f4a7c15, uint64(page))
	start := len(g.out)
	for range PageSize / 512 {
		g.out = append(g.out, zeros512[:]...)
	}
	hdr := start
	if page == 0 {
		copy(g.out[start:], "SQLite format 3\x00\x10\x00\x01\x01\x00\x40\x20\x20")
		hdr += 100
	}
	switch k := g.intn(100); {
	case k < 6 && page > 0 && version == 0: // a free page (never made by an update)
		return g.out
	case k < 18:
		g.out[hdr] = 0x0a // index leaf
	default:
		g.out[hdr] = 0x0d // table leaf
	}
	fill := PageSize * (55 + g.intn(40)) / 100
	content := PageSize
	cells := 0
	for {
		mark := len(g.out)
		g.record(g.out[hdr] == 0x0a, page*64+int64(cells))
		rec := g.out[mark:]
		ptrEnd := hdr - start + 8 + 2*(cells+1)
		if content-len(rec) < ptrEnd || PageSize-content+len(rec) > fill {
			g.out = g.out[:mark]
			break
		}
		content -= len(rec)
		copy(g.out[start+content:], rec)
		binary.BigEndian.PutUint16(g.out[hdr+8+2*cells:], uint16(content))
		cells++
		g.out = g.out[:mark]
	}
	binary.BigEndian.PutUint16(g.out[hdr+3:], uint16(cells))
	binary.BigEndian.PutUint16(g.out[hdr+5:], uint16(content))
	return g.out
}

var zeros512 [512]byte

// record appends one row (or index key) in a varint-framed layout.
func (g *textGen) record(index bool, rowid int64) {
	mark := len(g.out)
	g.out = append(g.out, 0, 0) // payload length, patched below
	g.out = binary.AppendUvarint(g.out, uint64(rowid))
	if index {
		g.out = binary.LittleEndian.AppendUint64(g.out, g.pcg.Uint64())
	} else {
		g.out = append(g.out, 5, 0x18, 0x21, 0x41, 0x06) // column types
		g.word(g.vocab)
		g.out = append(g.out, '\x00')
		g.sentence(2 + g.intn(18))
		g.out = append(g.out, '\x00')
		g.out = binary.BigEndian.AppendUint64(g.out, uint64(1_700_000_000+rowid*37))
		g.out = binary.BigEndian.AppendUint32(g.out, uint32(g.skew(100000)))
	}
	binary.BigEndian.PutUint16(g.out[mark:], uint16(len(g.out)-mark-2))
}
