package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sandsnap/sandsnap/repo"
)

// entryState is what a removal, write, chmod or rename changes.
type entryState struct {
	ino, size    uint64
	mode         uint32
	mtime, ctime int64
}

// treeState records every entry below dir but the top-level names skip.
func treeState(t *testing.T, dir string, skip ...string) map[string]entryState {
	t.Helper()
	out := make(map[string]entryState)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, s := range skip {
			if rel == s {
				return filepath.SkipDir
			}
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		out[rel] = entryState{st.Ino, uint64(st.Size), st.Mode, st.Mtim.Nano(), st.Ctim.Nano()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRestoreRefusedInChroot runs the real, static binary chrooted into a
// temporary root that holds a fake /etc, /boot and a repository, so that
// a guard that failed could only harm the fake: restore into / and into
// system directories is refused, with --delete and --dry-run too, exits
// non-zero with one line, and removes nothing; a restore into /work does
// run (so the refusals are the guard's, not a broken setup).
func TestRestoreRefusedInChroot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Setenv("SANDSNAP_REPO", "")
	root := filepath.Join(t.TempDir(), "root")
	for _, f := range []string{"etc/passwd", "etc/hosts", "boot/vmlinuz", "keep", "root/.profile"} {
		writeTestFile(t, filepath.Join(root, f), f)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(root, "sandsnap"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static: the fake root has no libc
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	backupJSON(t, filepath.Join(root, "rp"), makeSource(t), "--name", "box")
	before := treeState(t, root, "rp")

	chrooted := func(args ...string) (string, int) {
		cmd := exec.Command("/sandsnap", append([]string{"--repo", "/rp", "--no-cache"}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		cmd.Dir = "/"
		cmd.Env = []string{"HOME=/root", "PATH=/"}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run chrooted: %v", err)
		}
		return errb.String(), cmd.ProcessState.ExitCode()
	}
	for _, args := range [][]string{
		{"restore", "box", "/"},
		{"restore", "--delete", "box", "/"},
		{"restore", "--dry-run", "--delete", "box", "/"},
		{"restore", "box", "/etc"},
		{"restore", "--delete", "box", "/etc"},
		{"restore", "box", "/etc/app"},
		{"restore", "box", "/boot"},
		{"restore", "box", "/root"},
	} {
		stderr, code := chrooted(args...)
		if code != exitRefused || !strings.Contains(stderr, "restore target refused: "+args[len(args)-1]+" is ") {
			t.Errorf("sandsnap %s: exit %d, stderr %q; want exit 16 (refused) and the refusal", strings.Join(args, " "), code, stderr)
		}
		checkStderr(t, stderr, code)
	}
	if after := treeState(t, root, "rp"); !maps.Equal(before, after) {
		t.Errorf("refused restores changed the root: before %v, after %v", before, after)
	}
	if stderr, code := chrooted("restore", "box", "/work"); code != 0 {
		t.Fatalf("restore into /work in the chroot: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "work", "README.md")); err != nil {
		t.Errorf("restore into /work in the chroot: %v", err)
	}
}

func writeTestFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreTargetCommands: restore refuses a non-empty directory it has
// no record of (one line suggesting --delete), --dry-run lists what
// --delete then does and changes nothing, status reports the record and an
// unfinished restore's marker, and backup refuses a directory that holds
// one.
func TestRestoreTargetCommands(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	src := makeSource(t)
	h, _ := backupJSON(t, repoDir, src, "--name", "box")
	run := func(args ...string) (string, string, int) {
		t.Helper()
		out, stderr, code := cli(t, "", append([]string{"--repo", repoDir}, args...)...)
		checkStderr(t, stderr, code)
		return out, stderr, code
	}
	mine := t.TempDir()
	writeTestFile(t, filepath.Join(mine, "notes.txt"), "mine")
	before := treeState(t, mine)
	for _, args := range [][]string{{"restore", "box", mine}, {"restore", "--dry-run", "box", mine}} {
		if _, stderr, code := run(args...); code != exitRefused || !strings.Contains(stderr, mine+" is not empty") || !strings.Contains(stderr, "--delete") {
			t.Errorf("%v: exit %d, stderr %q; want the refusal suggesting --delete", args, code, stderr)
		}
	}
	out, _, code := run("restore", "--dry-run", "--delete", "box", mine)
	for _, line := range []string{"remove notes.txt\n", "write README.md\n", "mkdir node_modules\n", "symlink link\n", "nothing was changed", "to write 5 files"} {
		if code != 0 || !strings.Contains(out, line) {
			t.Errorf("dry run: exit %d, output %q; want %q in it", code, out, line)
		}
	}
	out, _, _ = run("restore", "--dry-run", "--delete", "--json", "box", mine)
	var dry restoreOutput
	if err := json.Unmarshal([]byte(out), &dry); err != nil || !dry.Stats.DryRun || len(dry.Stats.Actions) == 0 ||
		dry.Stats.Actions[0] != (repo.Action{Op: repo.OpRemove, Path: "notes.txt"}) {
		t.Errorf("dry run --json: %v, %+v", err, dry.Stats)
	}
	if after := treeState(t, mine); !maps.Equal(before, after) {
		t.Errorf("dry runs changed %s", mine)
	}
	if _, stderr, code := run("restore", "--delete", "box", mine); code != 0 {
		t.Fatalf("restore --delete: exit %d, %s", code, stderr)
	}
	sameTree(t, src, mine)

	out, _, _ = run("status", mine)
	if !strings.Contains(out, "state       tracked\n") || !strings.Contains(out, "snapshot "+h.ID.String()+" (in the repository), 5 files") {
		t.Errorf("status of a restored directory: %q", out)
	}
	out, _, _ = run("status", "--json", filepath.Join(mine, "missing"))
	var st repo.DirStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.State != repo.DirMissing {
		t.Errorf("status --json of a missing directory: %v, %q", err, out)
	}

	marker, _ := json.Marshal(map[string]any{"snapshot": h.ID, "started": "2026-01-02T03:04:05Z", "host": "elsewhere", "pid": 1})
	writeTestFile(t, filepath.Join(mine, ".sandsnap-restoring"), string(marker))
	out, _, _ = run("status", mine)
	for _, want := range []string{"state       incomplete\n", "restore of snapshot " + h.ID.String(), "process 1 on elsewhere, not running",
		"to finish it: sandsnap restore " + h.ID.String() + " " + mine} {
		if !strings.Contains(out, want) {
			t.Errorf("status of a half-restored directory: %q; want %q in it", out, want)
		}
	}
	if _, stderr, code := run("backup", mine); code != exitRefused || !strings.Contains(stderr, "incomplete restore") || !strings.Contains(stderr, h.ID.String()) {
		t.Errorf("backup of a half-restored directory: exit %d, %q", code, stderr)
	}
	if _, stderr, code := run("restore", "box", mine); code != 0 {
		t.Fatalf("finishing restore: exit %d, %s", code, stderr)
	}
	if out, _, _ := run("status", mine); !strings.Contains(out, "state       tracked\n") {
		t.Errorf("status after the finishing restore: %q", out)
	}
}
