package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/bench"
	"github.com/sandsnap/sandsnap/repo"
)

// TestMain points the user cache folder at a temporary one, so that the
// host cache the commands use by default (<user cache dir>/sandsnap) is
// never the real one of whoever runs the tests; child processes inherit it.
// The go command's build cache stays where it was (it too defaults to the
// user cache folder), so the tests that build sandsnap reuse it.
func TestMain(m *testing.M) {
	if os.Getenv("GOCACHE") == "" {
		if user, err := os.UserCacheDir(); err == nil {
			os.Setenv("GOCACHE", filepath.Join(user, "go-build"))
		}
	}
	dir, err := os.MkdirTemp("", "sandsnap-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// forks is how many sandboxes the fork tests run at once.
const forks = 8

// proc runs the sandsnap binary bin once and returns its stdout; it fails
// the test (from any goroutine) unless the exit status is 0.
func proc(t *testing.T, ctx context.Context, bin string, args ...string) []byte {
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Errorf("sandsnap %v: %v\nstderr: %s", args, err, errb.String())
		return nil
	}
	return out.Bytes()
}

// parallel runs fn(0) … fn(n-1) on their own goroutines and waits.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

// TestForkBackupsS3 is the fork workflow over a real S3 server, with the
// binary built with the race detector: one base snapshot is restored into
// eight directories by eight processes at once (through one host cache
// folder), each fork changes differently, and eight processes back the
// forks up at once with the base as parent (each with its own cache
// folder, as on eight hosts). Every process must succeed, the snapshots
// must be distinct, verify must pass and every snapshot must restore to
// exactly its fork.
func TestForkBackupsS3(t *testing.T) {
	endpoint, bucket := s3TestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	tmp := t.TempDir()
	bin := buildBinary(t, tmp, "-race")
	phase("built")
	var suffix [8]byte
	rand.Read(suffix[:])
	global := []string{"--repo", "s3://" + bucket + "/forks-" + hex.EncodeToString(suffix[:]), "--endpoint", endpoint}
	run := func(args ...string) []byte { return proc(t, ctx, bin, append(global, args...)...) }

	src := filepath.Join(tmp, "src")
	if _, err := bench.Generate(src, bench.KindNode, bench.Options{Seed: 1, Scale: 0.01}); err != nil {
		t.Fatal(err)
	}
	var base repo.Handle
	if err := json.Unmarshal(run("backup", src, "--json", "--no-cache"), &base); err != nil || base.ID.IsZero() {
		t.Fatalf("base backup: handle %+v, %v", base, err)
	}

	phase("base backed up")
	shared := filepath.Join(tmp, "cache-shared")
	dirs := make([]string, forks)
	parallel(forks, func(i int) {
		dirs[i] = filepath.Join(tmp, fmt.Sprintf("fork%d", i))
		run("--cache", shared, "restore", base.ID.String(), dirs[i], "--json")
	})
	if t.Failed() {
		t.FailNow()
	}
	for i, d := range dirs {
		sameTree(t, src, d)
		if _, err := bench.Mutate(d, bench.MutateDev, bench.MutateOptions{Seed: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}

	phase("restored and mutated")
	handles := make([]repo.Handle, forks)
	parallel(forks, func(i int) {
		cacheDir := filepath.Join(tmp, fmt.Sprintf("cache%d", i))
		out := run("--cache", cacheDir, "backup", dirs[i], "--parent", base.ID.String(), "--json")
		if out != nil {
			if err := json.Unmarshal(out, &handles[i]); err != nil {
				t.Errorf("fork %d: backup --json output %q: %v", i, out, err)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	seen := map[string]int{}
	for i, h := range handles {
		if j, ok := seen[h.ID.String()]; ok || h.ID.IsZero() || h.ID == base.ID {
			t.Errorf("fork %d: snapshot %s (also fork %d's or the base's)", i, h.ID, j)
		}
		seen[h.ID.String()] = i
		if h.Parent == nil || *h.Parent != base.ID {
			t.Errorf("fork %d: parent %v; want %s", i, h.Parent, base.ID)
		}
	}
	phase("forks backed up")
	run("verify", "--read-data")
	phase("verified")

	parallel(forks, func(i int) {
		run("--no-cache", "restore", handles[i].ID.String(), filepath.Join(tmp, fmt.Sprintf("check%d", i)))
	})
	if t.Failed() {
		t.FailNow()
	}
	for i := range forks {
		sameTree(t, dirs[i], filepath.Join(tmp, fmt.Sprintf("check%d", i)))
	}
	phase("snapshots restored and compared")
}
