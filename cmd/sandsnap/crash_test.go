package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/local"
)

// TestCrashedBackups kills real `sandsnap backup` processes with SIGKILL
// at pseudo-random moments, then checks that every snapshot committed
// before (or by a backup that finished before its kill) restores
// byte for byte, that verify is clean, and that gc runs cleanly over the
// debris (the killed writers' packs and leases) and keeps all of it
// restorable.
func TestCrashedBackups(t *testing.T) {
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	repoDir := filepath.Join(tmp, "repo")
	src := filepath.Join(tmp, "src")
	rng := rand.New(rand.NewPCG(5, 6))
	addFiles := func(round, n int) {
		for i := range n {
			b := make([]byte, 64<<10+rng.IntN(256<<10))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			p := filepath.Join(src, fmt.Sprintf("d%d", i%4), fmt.Sprintf("r%d-f%d", round, i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	type committed struct {
		h     repo.Handle
		files map[string][]byte
	}
	var done []committed
	backup := func(kill time.Duration) {
		cmd := exec.Command(bin, "--repo", repoDir, "--no-cache", "backup", src, "--json")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var err error
		if kill > 0 {
			select {
			case err = <-exited:
			case <-time.After(kill):
				_ = cmd.Process.Signal(syscall.SIGKILL)
				err = <-exited
			}
		} else {
			err = <-exited
		}
		if err != nil {
			if kill == 0 {
				t.Fatalf("backup: %v: %s", err, errb.String())
			}
			return // killed: nothing committed, or a snapshot nobody knows of
		}
		var h repo.Handle
		if err := json.Unmarshal(out.Bytes(), &h); err != nil {
			t.Fatalf("backup output %q: %v", out.String(), err)
		}
		done = append(done, committed{h, crashFiles(t, src)})
	}
	addFiles(0, 12)
	backup(0)
	for round := 1; round <= 10; round++ {
		addFiles(round, 6)
		backup(time.Duration(2+rng.IntN(80)) * time.Millisecond)
	}
	addFiles(99, 2)
	backup(0)
	t.Logf("%d of 12 backups committed", len(done))

	ctx := context.Background()
	st, err := local.Open(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, st, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		rep, err := r.Verify(ctx, repo.VerifyOptions{ReadData: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range rep.Problems {
			t.Errorf("%s: verify: %s", when, p)
		}
		for _, c := range done {
			dst := filepath.Join(t.TempDir(), "dst")
			if _, err := r.Restore(ctx, c.h.ID, dst, repo.RestoreOptions{}); err != nil {
				t.Fatalf("%s: restore %s: %v", when, c.h.ID.Str(), err)
			}
			got := crashFiles(t, dst)
			if len(got) != len(c.files) {
				t.Fatalf("%s: restore %s: %d files, want %d", when, c.h.ID.Str(), len(got), len(c.files))
			}
			for k, v := range c.files {
				if !bytes.Equal(got[k], v) {
					t.Fatalf("%s: restore %s: %s differs", when, c.h.ID.Str(), k)
				}
			}
		}
	}
	check("after the crashes")
	for i := range 2 {
		rep, err := r.GC(ctx, repo.GCOptions{})
		if err != nil {
			t.Fatalf("gc %d: %v", i, err)
		}
		t.Logf("gc %d: %+v", i, rep)
	}
	check("after gc")
}

// crashFiles returns every regular file under dir by relative path.
func crashFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
