package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/repo"
)

// TestRestoreUntrusted: restore --untrusted drops a setuid bit, lists it
// as skipped (an object in --json, a line in the human output) and exits
// with status 3; the same restore without the flag keeps the bit and
// exits 0.
func TestRestoreUntrusted(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	src := makeSource(t)
	tool := filepath.Join(src, "bin/run.sh")
	if err := unix.Chmod(tool, 0o4755); err != nil {
		t.Fatal(err)
	}
	backupJSON(t, repoDir, src, "--name", "suid")

	dst := filepath.Join(t.TempDir(), "dst")
	out, stderr, code := cli(t, "", "--repo", repoDir, "restore", "suid", dst, "--untrusted", "--json")
	if code != exitPartial || stderr != "" {
		t.Fatalf("restore --untrusted: exit %d, stderr %q; want %d and nothing", code, stderr, exitPartial)
	}
	var got struct {
		Stats struct {
			Skipped []repo.Skipped `json:"skipped"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("restore --json output %q: %v", out, err)
	}
	want := []repo.Skipped{{Path: "bin/run.sh", Reason: "setuid/setgid bits not restored (untrusted)"}}
	if !slices.Equal(got.Stats.Skipped, want) {
		t.Errorf("skipped = %v; want %v", got.Stats.Skipped, want)
	}
	if fi, err := os.Stat(filepath.Join(dst, "bin/run.sh")); err != nil || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("untrusted restore left %v, %v; want no setuid bit", fi.Mode(), err)
	}

	out, stderr, code = cli(t, "", "--repo", repoDir, "restore", "suid", dst, "--untrusted")
	if code != exitPartial || !strings.Contains(out, "skipped  bin/run.sh: setuid/setgid bits not restored (untrusted)\n") {
		t.Errorf("human restore --untrusted: exit %d, stdout %q, stderr %q; want status 3 and the skipped line", code, out, stderr)
	}

	trusted := filepath.Join(t.TempDir(), "trusted")
	_, stderr, code = cli(t, "", "--repo", repoDir, "restore", "suid", trusted)
	checkStderr(t, stderr, code)
	if fi, err := os.Stat(filepath.Join(trusted, "bin/run.sh")); code != 0 || err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("trusted restore: exit %d, %v; want status 0 and the setuid bit", code, err)
	}
}
