package repo

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRestoreKeepsMountsInside: a restore in place that removes what the
// snapshot lacks never removes what a mount inside the target holds (a
// volume, a bind mount of a directory that lives elsewhere too), however
// deep: each such entry is left, listed as skipped, and the rest of the
// restore finishes.
func TestRestoreKeepsMountsInside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting inside the target needs root")
	}
	ctx := context.Background()
	r, _ := newTestRepo(t)
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"a": []byte("1"), "b/c": []byte("2")})
	h, err := r.Backup(ctx, src, BackupOptions{})
	noErr(t, err)
	dst := filepath.Join(t.TempDir(), "dst")
	_, err = r.Restore(ctx, h.ID, dst, RestoreOptions{})
	noErr(t, err)

	outside := t.TempDir()
	writeTree(t, outside, map[string][]byte{"precious": []byte("lives elsewhere")})
	mount := func(source, dir, fstype string, flags uintptr) {
		noErr(t, os.MkdirAll(dir, 0o755))
		if err := unix.Mount(source, dir, fstype, flags, ""); err != nil {
			t.Skipf("cannot mount %s here: %v", fstype, err)
		}
		t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	}
	mount("sandsnap-test", filepath.Join(dst, "vol"), "tmpfs", 0)
	mount("sandsnap-test", filepath.Join(dst, "extra/deep"), "tmpfs", 0)
	mount(outside, filepath.Join(dst, "bind"), "", unix.MS_BIND)
	for _, p := range []string{"vol/keep", "extra/deep/keep", "extra/gone"} {
		noErr(t, os.WriteFile(filepath.Join(dst, p), []byte("x"), 0o644))
	}
	noErr(t, os.WriteFile(filepath.Join(dst, "junk"), []byte("x"), 0o644))

	stats, err := r.Restore(ctx, h.ID, dst, RestoreOptions{Delete: true})
	if err != nil {
		t.Fatalf("restore in place around mounts: %v", err)
	}
	var skipped []string
	for _, s := range stats.Skipped {
		skipped = append(skipped, s.Path)
	}
	if want := []string{"bind", "extra", "vol"}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %v (%v); want %v", skipped, stats.Skipped, want)
	}
	for _, p := range []string{"vol/keep", "extra/deep/keep", "bind/precious"} {
		if _, err := os.Stat(filepath.Join(dst, p)); err != nil {
			t.Errorf("%s, held by a mount inside the target: %v", p, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(outside, "precious")); err != nil || string(got) != "lives elsewhere" {
		t.Errorf("the bind mount's source lost its file: %q, %v", got, err)
	}
	for _, p := range []string{"junk", "extra/gone"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); !os.IsNotExist(err) {
			t.Errorf("%s, which the snapshot lacks, is still there (%v)", p, err)
		}
	}
	for _, p := range []string{"a", "b/c"} {
		if _, err := os.Stat(filepath.Join(dst, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, markerName)); !os.IsNotExist(err) {
		t.Errorf("the finished restore left its marker (%v)", err)
	}
}
