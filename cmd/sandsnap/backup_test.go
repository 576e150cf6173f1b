package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/internal/usertest"
	"github.com/sandsnap/sandsnap/repo"
)

// TestBackupUnreadableDirectory is issue 11's case 5 from the command
// line: a directory the user cannot open fails backup with one line
// naming it; with --skip-unreadable the backup commits without it, lists
// it in the handle's stats.skipped and exits with status 3.
func TestBackupUnreadableDirectory(t *testing.T) {
	if !usertest.Nobody(t) { // as root, a child process runs it as nobody
		return
	}
	t.Setenv("SANDSNAP_REPO", "")
	src := makeSource(t)
	locked := filepath.Join(src, "node_modules", "private")
	if err := os.Mkdir(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(locked, "key"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) }) // so that TempDir can remove it
	repoDir := filepath.Join(t.TempDir(), "repo")
	if _, stderr, code := cli(t, "", "--repo", repoDir, "init"); code != 0 {
		t.Fatalf("init: exit %d, stderr %q", code, stderr)
	}

	out, stderr, code := cli(t, "", "--repo", repoDir, "--no-cache", "backup", src)
	if code != exitError || !strings.Contains(stderr, locked) || !strings.Contains(stderr, "permission denied") || out != "" {
		t.Errorf("backup: exit %d, stdout %q, stderr %q; want %d and one line naming %s", code, out, stderr, exitError, locked)
	}
	checkStderr(t, stderr, code)

	out, stderr, code = cli(t, "", "--repo", repoDir, "--no-cache", "backup", src, "--skip-unreadable", "--json")
	if code != exitPartial {
		t.Fatalf("backup --skip-unreadable: exit %d, stderr %q; want %d", code, stderr, exitPartial)
	}
	var h repo.Handle
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("backup --json output %q: %v", out, err)
	}
	if len(h.Stats.Skipped) != 1 || h.Stats.Skipped[0].Path != "node_modules/private" || h.Stats.Files != 5 {
		t.Errorf("skipped %v, %d files; want node_modules/private alone left out of 5 files", h.Stats.Skipped, h.Stats.Files)
	}
}
