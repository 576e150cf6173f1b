package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/repo"
)

// backedUpRepo returns a local repository holding one backup of a
// makeSource tree (backup flags extra), the tree, and the handle.
func backedUpRepo(t *testing.T, extra ...string) (repoDir, src string, h repo.Handle) {
	t.Helper()
	t.Setenv("SANDSNAP_REPO", "")
	repoDir = filepath.Join(t.TempDir(), "repo")
	src = makeSource(t)
	h, _ = backupJSON(t, repoDir, src, extra...)
	return repoDir, src, h
}

// TestLsSkipsBadSnapshotObjects (#6): a snapshot object that is garbage
// and one written by a newer sandsnap are each one warning line on
// stderr; ls still lists the good snapshot and exits 0, and restore by
// name still works.
func TestLsSkipsBadSnapshotObjects(t *testing.T) {
	repoDir, src, h := backedUpRepo(t, "--name", "web")
	var bad []string
	for _, data := range []string{"garbage", `{"version":9,"tree":"` + h.ID.String() + `"}`} {
		name := chunk.Hash([]byte(data)).String()
		if err := os.WriteFile(filepath.Join(repoDir, "snapshots", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		bad = append(bad, name)
	}

	out, stderr, code := cli(t, "", "--repo", repoDir, "ls", "--json")
	if code != 0 {
		t.Fatalf("ls: exit %d, stderr %q", code, stderr)
	}
	var hs []repo.Handle
	if err := json.Unmarshal([]byte(out), &hs); err != nil || len(hs) != 1 || hs[0].ID != h.ID {
		t.Errorf("ls --json = %s (%v); want the one good snapshot", out, err)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != len(bad) {
		t.Errorf("stderr = %q; want one line per bad object", stderr)
	}
	for _, name := range bad {
		found := false
		for _, l := range lines {
			found = found || (strings.HasPrefix(l, "sandsnap: warning: ") && strings.Contains(l, name))
		}
		if !found {
			t.Errorf("no warning line names %s: %q", name, stderr)
		}
	}

	dst := filepath.Join(t.TempDir(), "dst")
	if _, stderr, code := cli(t, "", "--repo", repoDir, "restore", "web", dst); code != 0 {
		t.Fatalf("restore by name next to bad objects: exit %d, stderr %q", code, stderr)
	}
	sameTree(t, src, dst)
}

// TestDamagedOrMissingConfig (#6): a garbage config is reported as
// damaged, naming the object, not as a missing repository; a repository
// whose config is gone is not given a new one by backup.
func TestDamagedOrMissingConfig(t *testing.T) {
	repoDir, src, _ := backedUpRepo(t)
	config := filepath.Join(repoDir, "config")

	if err := os.WriteFile(config, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ls"}, {"backup", src}} {
		_, stderr, code := cli(t, "", append([]string{"--repo", repoDir}, args...)...)
		checkStderr(t, stderr, code)
		if code != exitCorrupt || !strings.Contains(stderr, "config is damaged") || !strings.Contains(stderr, "object config") {
			t.Errorf("%s with a garbage config: exit %d, stderr %q; want the damaged config named", args[0], code, stderr)
		}
	}

	if err := os.Remove(config); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := cli(t, "", "--repo", repoDir, "backup", src)
	checkStderr(t, stderr, code)
	if code != exitCorrupt || !strings.Contains(stderr, "without a config") {
		t.Errorf("backup without a config: exit %d, stderr %q; want a refusal", code, stderr)
	}
	if _, err := os.Stat(config); !os.IsNotExist(err) {
		t.Errorf("backup re-created the config (%v)", err)
	}
}
