package repo

import (
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/sandsnap/sandsnap/chunk"
)

// BenchmarkGCMarkSet measures the mark's memory: the heap bytes per
// reachable blob of the set gc builds (reported as B/blob), and the time
// per insert.
func BenchmarkGCMarkSet(b *testing.B) {
	const n = 1 << 20
	ids := make([]chunk.ID, n)
	for i := range ids {
		binary.LittleEndian.PutUint64(ids[i][:], uint64(i)*0x9e3779b97f4a7c15)
	}
	var perBlob float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		reach := make(map[chunk.ID]struct{})
		for _, id := range ids {
			reach[id] = struct{}{}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perBlob = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(reach)
	}
	b.ReportMetric(perBlob, "B/blob")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/blob")
}
