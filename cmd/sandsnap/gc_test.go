package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/repo"
)

// TestRemoveAndGC: rm removes snapshots by handle; gc run twice with no
// writer running frees the packs only they held; the remaining snapshot
// restores and verify is clean.
func TestRemoveAndGC(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	keep := makeSource(t)
	hKeep, _ := backupJSON(t, repoDir, keep, "--name", "keep")
	var gone []repo.Handle
	for i := range 3 {
		src := makeSource(t)
		rng := rand.New(rand.NewPCG(uint64(i), 9))
		own := make([]byte, 200<<10)
		for j := range own {
			own[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(src, "own.bin"), own, 0o644); err != nil {
			t.Fatal(err)
		}
		h, _ := backupJSON(t, repoDir, src, "--name", "gone")
		gone = append(gone, h)
	}
	packBytes := func() int64 {
		var n int64
		filepath.Walk(filepath.Join(repoDir, "packs"), func(_ string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				n += fi.Size()
			}
			return err
		})
		return n
	}
	before := packBytes()

	// rm: by full ID, by ID prefix, by name (the newest "gone").
	out, stderr, code := cli(t, "", "--repo", repoDir, "rm", gone[0].ID.String(), gone[1].ID.String()[:12], "gone")
	checkStderr(t, stderr, code)
	if code != 0 || strings.Count(out, "removed ") != 3 {
		t.Fatalf("rm: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"rm missing", []string{"rm", gone[0].ID.String()}, exitNotFound, "not found"},
		{"rm no args", []string{"rm"}, 2, "missing HANDLE"},
		{"gc bad threshold", []string{"gc", "--repack-threshold", "2"}, 2, "--repack-threshold"},
	} {
		_, stderr, code := cli(t, "", append([]string{"--repo", repoDir}, tt.args...)...)
		checkStderr(t, stderr, code)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.name, code, stderr, tt.code, tt.want)
		}
	}

	gcJSON := func(args ...string) repo.GCReport {
		t.Helper()
		out, stderr, code := cli(t, "", append([]string{"--repo", repoDir, "gc", "--json"}, args...)...)
		checkStderr(t, stderr, code)
		if code != 0 {
			t.Fatalf("gc %v: exit %d, stderr %q", args, code, stderr)
		}
		var rep repo.GCReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("gc --json output %q: %v", out, err)
		}
		return rep
	}
	if rep := gcJSON("--dry-run"); !rep.DryRun || rep.PacksCondemned == 0 || packBytes() != before {
		t.Errorf("gc --dry-run: %+v, packs %d bytes (before %d); want packs condemned and nothing changed", rep, packBytes(), before)
	}
	first := gcJSON()
	second := gcJSON()
	if first.PacksCondemned == 0 || second.PacksDeleted != first.PacksCondemned || second.BytesFreed <= 0 {
		t.Errorf("gc runs: %+v then %+v; want the second to delete what the first condemned", first, second)
	}
	after := packBytes()
	if after >= before-3*(100<<10) {
		t.Errorf("packs hold %d bytes after gc, %d before; want the removed snapshots' data freed", after, before)
	}
	out, stderr, code = cli(t, "", "--repo", repoDir, "gc")
	checkStderr(t, stderr, code)
	if code != 0 || !strings.Contains(out, "packs ") || !strings.Contains(out, "generation") {
		t.Errorf("gc: exit %d, stdout %q", code, out)
	}

	dst := filepath.Join(t.TempDir(), "dst")
	if _, stderr, code := cli(t, "", "--repo", repoDir, "restore", "keep", dst); code != 0 {
		t.Fatalf("restore: exit %d, stderr %q", code, stderr)
	}
	sameTree(t, keep, dst)
	if out, stderr, code := cli(t, "", "--repo", repoDir, "verify", "--read-data"); code != 0 {
		t.Errorf("verify: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	list, _, _ := cli(t, "", "--repo", repoDir, "ls", "--all", "--json")
	var hs []repo.Handle
	if err := json.Unmarshal([]byte(list), &hs); err != nil || len(hs) != 1 || hs[0].ID != hKeep.ID {
		t.Errorf("ls after rm and gc: %s (%v); want only %s", list, err, hKeep.ID)
	}
}
