package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and returns
// it; it skips the test where that is not allowed (not root, or a
// container without CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("sandsnap-test", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=755", size)); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// megFiles writes n random files of 1 MiB (names prefix0, prefix1...)
// into dir; a seed makes other content.
func megFiles(t *testing.T, dir, prefix string, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	files := make(map[string][]byte)
	for i := range n {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		files[fmt.Sprintf("%s%d", prefix, i)] = b
	}
	writeTree(t, dir, files)
}

// enospcSnapshots backs up A (4 MiB: a0..a3) and B (6 MiB: a0..a3 with
// other content, and b0, b1).
func enospcSnapshots(t *testing.T, r *Repository) (a, b chunk.ID, srcB string) {
	t.Helper()
	srcA, srcB := t.TempDir(), t.TempDir()
	megFiles(t, srcA, "a", 4, 1)
	megFiles(t, srcB, "a", 4, 2)
	megFiles(t, srcB, "b", 2, 3)
	for _, s := range []struct {
		src string
		id  *chunk.ID
	}{{srcA, &a}, {srcB, &b}} {
		h, err := r.Backup(context.Background(), s.src, BackupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		*s.id = h.ID
	}
	return a, b, srcB
}

// restoreENOSPC restores b into dst, which must fail for lack of space
// naming a file; it checks what the failed restore left (left), frees
// space (free), and checks that the retry restores srcB.
func restoreENOSPC(t *testing.T, r *Repository, b chunk.ID, srcB, dst string, left, free func()) {
	t.Helper()
	ctx := context.Background()
	_, err := r.Restore(ctx, b, dst, RestoreOptions{})
	if !errors.Is(err, unix.ENOSPC) || !regexp.MustCompile(`"[ab][0-9]`).MatchString(err.Error()) {
		t.Fatalf("restore that does not fit: %v; want ENOSPC naming a file", err)
	}
	left()
	free()
	if _, err := r.Restore(ctx, b, dst, RestoreOptions{}); err != nil {
		t.Fatalf("retry after freeing space: %v", err)
	}
	sameAs(t, srcB, dst)
	if _, err := os.Lstat(filepath.Join(dst, markerName)); !os.IsNotExist(err) {
		t.Errorf("marker after the retry: %v", err)
	}
}

// TestRestoreENOSPCInPlace: a restore in place that runs out of space
// fails naming a file and leaves its marker; once a filler file is
// removed (enough room for the snapshot, not for two copies of it), the
// retry rewrites the changed files instead of writing beside them, and
// finishes.
func TestRestoreENOSPCInPlace(t *testing.T) {
	mnt := mountTmpfs(t, 8<<20)
	r := newCachedRepo(t)
	a, b, srcB := enospcSnapshots(t, r)
	dst := filepath.Join(mnt, "dst")
	if _, err := r.Restore(context.Background(), a, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	megFiles(t, filler, "f", 3, 4)
	restoreENOSPC(t, r, b, srcB, dst, func() {
		if m := readMarkerFile(t, dst); m.Snapshot != b {
			t.Errorf("marker names %s; want %s", m.Snapshot.Str(), b.Str())
		}
		// Temporary files and unfinished placeholders are removed; a new
		// file whose writing finished before the space ran out may stay,
		// whole (which files finish first depends on the writers' order).
		for _, n := range names(t, dst) {
			if strings.HasSuffix(n, ".tmp") {
				t.Errorf("the failed restore left %s", n)
			}
			if strings.HasPrefix(n, "b") {
				got, err := os.ReadFile(filepath.Join(dst, n))
				want, werr := os.ReadFile(filepath.Join(srcB, n))
				if err != nil || werr != nil || !bytes.Equal(got, want) {
					t.Errorf("the failed restore left %s unfinished (%d of %d bytes)", n, len(got), len(want))
				}
			}
		}
	}, func() {
		if err := os.RemoveAll(filler); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRestoreENOSPCStaged: a staged restore that runs out of space leaves
// nothing behind; after the filesystem is remounted larger the retry
// finishes.
func TestRestoreENOSPCStaged(t *testing.T) {
	mnt := mountTmpfs(t, 4<<20)
	r := newCachedRepo(t)
	_, b, srcB := enospcSnapshots(t, r)
	restoreENOSPC(t, r, b, srcB, filepath.Join(mnt, "dst"), func() {
		if got := names(t, mnt); len(got) != 0 {
			t.Errorf("the failed restore left %q", got)
		}
	}, func() {
		if err := unix.Mount("sandsnap-test", mnt, "tmpfs", unix.MS_REMOUNT, "size=8m"); err != nil {
			t.Fatalf("remount larger: %v", err)
		}
	})
}

// TestRestoreMountPoint: an empty mount point cannot be replaced by a
// rename, so it is restored in place (under the marker, removed at the
// end); the mount stays.
func TestRestoreMountPoint(t *testing.T) {
	mnt := mountTmpfs(t, 8<<20)
	r, id, src := smallSnapshot(t, Options{})
	var before unix.Stat_t
	if err := unix.Stat(mnt, &before); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Restore(context.Background(), id, mnt, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameAs(t, src, mnt)
	var after unix.Stat_t
	if err := unix.Stat(mnt, &after); err != nil {
		t.Fatal(err)
	}
	if after.Dev != before.Dev || after.Ino != before.Ino {
		t.Errorf("the mount point was replaced")
	}
	if got := names(t, filepath.Dir(mnt)); len(got) != 1 {
		t.Errorf("the mount point's parent holds %q; want it alone", got)
	}
}
