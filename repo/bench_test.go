package repo_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sandsnap/sandsnap/bench"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/local"
)

// The benchmarks below run over one generated workspace tree (a source
// checkout plus node_modules), made once per process. Its size comes from
// SANDSNAP_BENCH_FILES (default 20000 files, about 500 MB), in a temporary
// folder under SANDSNAP_BENCH_DIR (default the system's); tar and zstd
// baselines run over the same tree in the same process, so ratios are
// comparable on a noisy machine:
//
//	go test ./repo -run '^$' -bench . -benchtime 3x
type benchInput struct {
	dir  string
	size int64
}

var benchTree = sync.OnceValues(func() (benchInput, error) {
	files := 20000
	if s := os.Getenv("SANDSNAP_BENCH_FILES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return benchInput{}, fmt.Errorf("SANDSNAP_BENCH_FILES: %w", err)
		}
		files = n
	}
	dir, err := os.MkdirTemp(os.Getenv("SANDSNAP_BENCH_DIR"), "sandsnap-bench-")
	if err != nil {
		return benchInput{}, err
	}
	benchDir.Store(&dir)
	st, err := bench.Generate(filepath.Join(dir, "src"), bench.KindWorkspace, bench.Options{Seed: 1, Files: files, Scale: 5})
	if err != nil {
		return benchInput{}, err
	}
	return benchInput{dir, st.Bytes}, nil
})

// benchDir is the generated tree's folder, removed by TestMain.
var benchDir atomic.Pointer[string]

func TestMain(m *testing.M) {
	code := m.Run()
	if d := benchDir.Load(); d != nil {
		os.RemoveAll(*d)
	}
	os.Exit(code)
}

func benchSetup(b *testing.B) (dir string, size int64) {
	b.Helper()
	in, err := benchTree()
	if err != nil {
		b.Fatal(err)
	}
	return in.dir, in.size
}

func BenchmarkBackupFull(b *testing.B) {
	dir, size := benchSetup(b)
	ctx := context.Background()
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		rdir := filepath.Join(dir, "repo-full")
		os.RemoveAll(rdir)
		st, err := local.Create(rdir)
		if err != nil {
			b.Fatal(err)
		}
		r, err := repo.Init(ctx, st, repo.InitOptions{}, repo.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := r.Backup(ctx, filepath.Join(dir, "src"), repo.BackupOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRepo returns a repository holding one backup of the bench tree.
var benchRepo = sync.OnceValues(func() (*repo.Repository, error) {
	in, err := benchTree()
	if err != nil {
		return nil, err
	}
	st, err := local.Create(filepath.Join(in.dir, "repo"))
	if err != nil {
		return nil, err
	}
	return repo.OpenOrInit(context.Background(), st, repo.Options{})
})

var benchHandle = sync.OnceValues(func() (repo.Handle, error) {
	r, err := benchRepo()
	if err != nil {
		return repo.Handle{}, err
	}
	in, _ := benchTree()
	return r.Backup(context.Background(), filepath.Join(in.dir, "src"), repo.BackupOptions{})
})

func BenchmarkBackupNoChange(b *testing.B) {
	dir, size := benchSetup(b)
	r, err := benchRepo()
	if err != nil {
		b.Fatal(err)
	}
	h, err := benchHandle()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		if _, err := r.Backup(context.Background(), filepath.Join(dir, "src"), repo.BackupOptions{Parent: h.ID}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRestoreWorkspace(b *testing.B) {
	dir, size := benchSetup(b)
	r, err := benchRepo()
	if err != nil {
		b.Fatal(err)
	}
	h, err := benchHandle()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		target := filepath.Join(dir, "restored")
		os.RemoveAll(target)
		b.StartTimer()
		if _, err := r.Restore(context.Background(), h.ID, target, repo.RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// sh runs a baseline shell pipeline over the bench tree.
func sh(b *testing.B, script string) {
	b.Helper()
	out, err := exec.Command("bash", "-c", "set -euo pipefail; "+script).CombinedOutput()
	if err != nil {
		b.Fatalf("%s: %v\n%s", script, err, out)
	}
}

func BenchmarkBaselineTarZstd(b *testing.B) {
	dir, size := benchSetup(b)
	b.SetBytes(size)
	for b.Loop() {
		sh(b, fmt.Sprintf("tar -C %q -c src | zstd -q -T0 -3 > %q", dir, filepath.Join(dir, "src.tar.zst")))
	}
}

func BenchmarkBaselineTarExtract(b *testing.B) {
	dir, size := benchSetup(b)
	sh(b, fmt.Sprintf("tar -C %q -c src > %q", dir, filepath.Join(dir, "src.tar")))
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		target := filepath.Join(dir, "untar")
		os.RemoveAll(target)
		os.MkdirAll(target, 0o755)
		b.StartTimer()
		sh(b, fmt.Sprintf("tar -C %q -xf %q", target, filepath.Join(dir, "src.tar")))
	}
}

func BenchmarkBaselineStatWalk(b *testing.B) {
	dir, size := benchSetup(b)
	b.SetBytes(size)
	for b.Loop() {
		sh(b, fmt.Sprintf("find %q -printf '%%s %%T@\\n' > /dev/null", filepath.Join(dir, "src")))
	}
}
