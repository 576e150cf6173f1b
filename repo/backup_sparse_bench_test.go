package repo_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/mem"
)

// BenchmarkBackupSparse backs up one 1 GiB file holding 4 MiB of data in
// four extents (a preallocated disk image or database), into a fresh
// in-memory repository each time; the throughput is of the apparent size.
// Before SEEK_DATA, the kernel produced every zero of the holes for read.
func BenchmarkBackupSparse(b *testing.B) {
	const size = 1 << 30
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "disk.img"))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 1<<20)
	for _, off := range []int64{0, 300<<20 + 4096, 700 << 20, size - 1<<20} {
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(data, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	ctx := context.Background()
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		r, err := repo.Init(ctx, mem.New(), repo.InitOptions{}, repo.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := r.Backup(ctx, dir, repo.BackupOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
