package local_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/local"
	"github.com/sandsnap/sandsnap/store/storetest"
)

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := local.Create(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func newStore(t *testing.T) (*local.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		dir      string
		wantErr  bool
		notFound bool
	}{
		{dir, false, false},
		{missing, true, true},
		{file, true, false},
	}
	for _, tt := range tests {
		_, err := local.Open(tt.dir)
		if (err != nil) != tt.wantErr || errors.Is(err, store.ErrNotFound) != tt.notFound {
			t.Errorf("Open(%s) error = %v, want error %v (ErrNotFound %v)", tt.dir, err, tt.wantErr, tt.notFound)
		}
		if err != nil && !strings.Contains(err.Error(), tt.dir) {
			t.Errorf("Open(%s) error %q does not name the path", tt.dir, err)
		}
	}
	nested := filepath.Join(missing, "a", "b")
	s, err := local.Create(nested)
	if err != nil {
		t.Fatalf("Create(%s): %v", nested, err)
	}
	if s.Dir() != nested {
		t.Errorf("Dir() = %s, want %s", s.Dir(), nested)
	}
	if _, err := local.Open(nested); err != nil {
		t.Errorf("Open after Create: %v", err)
	}
}

func TestLayout(t *testing.T) {
	s, dir := newStore(t)
	name := "packs/ab/" + strings.Repeat("ab", 32)
	if err := s.Save(t.Context(), name, []byte("pack"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "packs", "ab", strings.Repeat("ab", 32)))
	if err != nil || string(got) != "pack" {
		t.Errorf("file for %s = %q, %v; want %q", name, got, err, "pack")
	}
}

// TestOwnFilesHidden checks that temporary files left by a killed process
// and the lock file are neither listed nor reachable by name.
func TestOwnFilesHidden(t *testing.T) {
	s, dir := newStore(t)
	ctx := t.Context()
	if err := s.Save(ctx, "packs/ab/real", []byte("x"), store.SaveOptions{IfMatch: ""}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "packs/ab/real"); err != nil { // creates the lock file
		t.Fatal(err)
	}
	if err := s.Save(ctx, "packs/ab/real", []byte("x"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, "packs", "ab", ".sandsnap-tmp-123")
	if err := os.WriteFile(stray, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	var listed []string
	err := s.List(ctx, "", func(fi store.Info) error {
		listed = append(listed, fi.Name)
		return nil
	})
	if err != nil || len(listed) != 1 || listed[0] != "packs/ab/real" {
		t.Errorf("List = %q, %v; want only packs/ab/real", listed, err)
	}
	for _, name := range []string{".sandsnap-lock", "packs/ab/.sandsnap-tmp-123", ".sandsnap-x/y"} {
		if _, err := s.Stat(ctx, name); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Stat(%q) error = %v, want ErrInvalidName", name, err)
		}
	}
}

// TestETagsDistinct saves same-sized versions in quick succession: each
// must get a new ETag even where the filesystem reuses inodes.
func TestETagsDistinct(t *testing.T) {
	s, _ := newStore(t)
	seen := make(map[string]int)
	for i := range 200 {
		data := []byte{byte(i), byte(i >> 8)}
		if err := s.Save(t.Context(), "lease", data, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		fi, err := s.Stat(t.Context(), "lease")
		if err != nil {
			t.Fatal(err)
		}
		if j, ok := seen[fi.ETag]; ok {
			t.Fatalf("save %d got ETag %q of save %d", i, fi.ETag, j)
		}
		seen[fi.ETag] = i
	}
}

const helperEnv = "SANDSNAP_LOCAL_HELPER_DIR"

const (
	raceNames  = 40 // create-only names every process races for
	increments = 15 // compare-and-swap increments per process
)

// TestHelperProcess is the body of the processes that TestCrossProcess
// starts; it does nothing when run directly.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	s, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := range raceNames {
		err := s.Save(ctx, fmt.Sprintf("race/%d", i), []byte("x"), store.SaveOptions{IfNoneMatch: true})
		switch {
		case err == nil:
			fmt.Printf("won %d\n", i)
		case !errors.Is(err, store.ErrExists):
			t.Fatal(err)
		}
	}
	for range increments {
		if err := increment(ctx, s, "counter"); err != nil {
			t.Fatal(err)
		}
	}
}

// increment adds one to the decimal counter in name with a
// compare-and-swap loop over IfMatch.
func increment(ctx context.Context, s store.Store, name string) error {
	for {
		fi, err := s.Stat(ctx, name)
		if err != nil {
			return err
		}
		data, err := store.LoadAll(ctx, s, name, 0, 0)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(data))
		if err != nil {
			return err
		}
		err = s.Save(ctx, name, []byte(strconv.Itoa(n+1)), store.SaveOptions{IfMatch: fi.ETag})
		if !errors.Is(err, store.ErrPrecondition) {
			return err
		}
	}
}

// TestCrossProcess runs several processes on one folder at once: every
// create-only name must have exactly one winner across them, and
// compare-and-swap increments must not get lost.
func TestCrossProcess(t *testing.T) {
	const procs = 4
	s, dir := newStore(t)
	if err := s.Save(t.Context(), "counter", []byte("0"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	outs := make([][]byte, procs)
	var wg sync.WaitGroup
	for p := range procs {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("process %d: %v\n%s", p, err, out)
			}
			outs[p] = out
		})
	}
	wg.Wait()
	wins := make([]int, raceNames)
	for _, out := range outs {
		for line := range strings.Lines(string(out)) {
			var i int
			if _, err := fmt.Sscanf(line, "won %d", &i); err == nil {
				wins[i]++
			}
		}
	}
	for i, n := range wins {
		if n != 1 {
			t.Errorf("race/%d was created by %d processes, want 1", i, n)
		}
	}
	got, err := store.LoadAll(t.Context(), s, "counter", 0, 0)
	if want := strconv.Itoa(procs * increments); err != nil || string(got) != want {
		t.Errorf("counter = %q, %v; want %s", got, err, want)
	}
}
