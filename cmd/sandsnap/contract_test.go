package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/repo"
)

// The tests in this file hold the CLI to its contract with the programs
// that drive it, through the real binary: exit statuses, and with --json
// exactly one error object on stderr whose code, path and object a
// program can branch on.

// binary is a built sandsnap.
type binary string

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the binary in dir (the current folder when "") with args and
// returns what it printed and its exit status.
func (b binary) run(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	return b.runEnv(t, nil, dir, stdin, args...)
}

// runEnv is run with env added to the environment.
func (b binary) runEnv(t *testing.T, env []string, dir, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(string(b), args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "SANDSNAP_REPO="), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return result{out.String(), errb.String(), exit.ExitCode()}
	case err != nil:
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), 0}
}

// backup backs src up with the binary and returns the handle.
func (b binary) backup(t *testing.T, repoDir, src string, extra ...string) repo.Handle {
	t.Helper()
	r := b.run(t, "", "", append([]string{"--repo", repoDir, "backup", src, "--json"}, extra...)...)
	var h repo.Handle
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &h) != nil {
		t.Fatalf("backup %v: exit %d, stdout %q, stderr %q", extra, r.code, r.stdout, r.stderr)
	}
	return h
}

// TestContract builds the binary once for the contract's tests.
func TestContract(t *testing.T) {
	// -buildvcs=auto (over a GOFLAGS that turns it off) so that
	// --version can be checked against the commit.
	bin := binary(buildBinary(t, t.TempDir(), "-buildvcs=auto"))
	t.Run("ExitCodes", func(t *testing.T) { testExitCodes(t, bin) })
	t.Run("Partial", func(t *testing.T) { testExitPartial(t, bin) })
	t.Run("Corrupt", func(t *testing.T) { testExitCorrupt(t, bin) })
	t.Run("Interrupted", func(t *testing.T) { testExitInterrupted(t, bin) })
	t.Run("Version", func(t *testing.T) { testVersion(t, bin) })
	t.Run("Unreachable", func(t *testing.T) { testUnreachable(t, bin) })
	t.Run("S3", func(t *testing.T) { testS3Errors(t, bin) })
}

// testExitCodes runs each failure twice, for people and with --json, and
// checks its exit status, its error line or object, and what the object
// names.
func testExitCodes(t *testing.T, bin binary) {
	tmp := t.TempDir()
	repoDir, src := filepath.Join(tmp, "repo"), makeSource(t)
	h := bin.backup(t, repoDir, src, "--name", "box")
	old := bin.backup(t, repoDir, src, "--name", "old", "--ttl", "1s")
	// Expiry is judged by the store's clock, here this host's.
	time.Sleep(time.Until(old.Expires.Add(100 * time.Millisecond)))

	empty, fresh := t.TempDir(), filepath.Join(tmp, "fresh")
	missing := filepath.Join(tmp, "missing")
	file := filepath.Join(src, "README.md")
	dst := filepath.Join(tmp, "dst")
	tests := []struct {
		name   string
		args   []string
		exit   int
		code   string
		want   string // in the message
		path   string // the JSON error's path, if it names one
		object string // the JSON error's object, if it names one
	}{
		{"usage", []string{"--repo", repoDir, "restore"}, exitUsage, "invalid_argument", "missing HANDLE", "", ""},
		{"unknown command", []string{"resotre", "x", "y"}, exitUsage, "invalid_argument", "did you mean restore?", "", ""},
		{"location typo", []string{"--repo", "s3:/bucket", "backup", src}, exitUsage, "invalid_argument", "did you mean s3://bucket?", "", ""},
		{"zero ttl", []string{"--repo", fresh, "backup", src, "--ttl", "0s"}, exitUsage, "invalid_argument", "must be positive", "", ""},
		{"negative ttl", []string{"--repo", fresh, "backup", src, "--ttl", "-2h"}, exitUsage, "invalid_argument", "must be positive", "", ""},
		{"bad name", []string{"--repo", fresh, "backup", src, "--name", "a\nb"}, exitUsage, "invalid_argument", "--name: invalid snapshot name", "", ""},
		{"short prefix", []string{"--repo", repoDir, "restore", h.ID.String()[:6], dst}, exitUsage, "invalid_argument", "too short", "", ""},
		{"empty handle", []string{"--repo", repoDir, "restore", "", dst}, exitUsage, "invalid_argument", "empty HANDLE", "", ""},
		{"empty location", []string{"--repo", empty, "ls"}, exitNoRepository, "no_repository", "no sandsnap repository at " + empty, "", ""},
		{"missing location", []string{"--repo", missing, "restore", "box", dst}, exitNoRepository, "no_repository", "no sandsnap repository at " + missing, "", ""},
		{"unknown snapshot", []string{"--repo", repoDir, "restore", strings.Repeat("ab", 32), dst}, exitNotFound, "not_found", "snapshot not found", "", ""},
		{"unknown name", []string{"--repo", repoDir, "show", "nope"}, exitNotFound, "not_found", `"nope"`, "", ""},
		{"expired snapshot", []string{"--repo", repoDir, "restore", old.ID.String(), dst}, exitExpired, "expired", "expired", "", ""},
		{"expired name", []string{"--repo", repoDir, "restore", "old", dst}, exitExpired, "expired", "expired: all snapshots named \"old\"", "", ""},
		{"missing source", []string{"--repo", repoDir, "backup", missing}, exitError, "path_not_found", missing, missing, ""},
		{"source is a file", []string{"--repo", repoDir, "backup", file}, exitError, "not_directory", "not a directory", file, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bin.run(t, tmp, "", tt.args...)
			if r.code != tt.exit || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d, %q in stderr, no stdout", r.code, r.stderr, r.stdout, tt.exit, tt.want)
			}
			checkStderr(t, r.stderr, r.code)
			r = bin.run(t, tmp, "", append(tt.args, "--json")...)
			if r.code != tt.exit {
				t.Errorf("with --json: exit %d; want %d", r.code, tt.exit)
			}
			e := checkJSONError(t, r.stderr, tt.exit, tt.code)
			if !strings.Contains(e.Message, tt.want) || str(e.Path) != tt.path || str(e.Object) != tt.object {
				t.Errorf("JSON error %s; want %q in the message, path %q, object %q", r.stderr, tt.want, tt.path, tt.object)
			}
		})
	}
	// Nothing refused before the repository was touched created one.
	for _, p := range []string{fresh, missing, filepath.Join(tmp, "s3:"), filepath.Join(tmp, "s3:", "bucket")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused command created %s", p)
		}
	}
}

// str reads an optional JSON string.
func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// testExitPartial backs up a tree holding a unix socket, which a snapshot
// cannot hold: exit 3, the handle lists the socket as a skipped object, and
// with --json stderr holds one object naming it; without, nothing.
func testExitPartial(t *testing.T, bin binary) {
	tmp := t.TempDir()
	src := makeSource(t)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(src, "agent.sock"), Net: "unix"})
	if err != nil {
		t.Skipf("cannot make a unix socket: %v", err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	repoDir := filepath.Join(tmp, "repo")

	r := bin.run(t, "", "", "--repo", repoDir, "backup", src, "--json")
	if r.code != exitPartial {
		t.Fatalf("backup --json: exit %d, stderr %q; want %d", r.code, r.stderr, exitPartial)
	}
	var h struct {
		ID    string `json:"id"`
		Stats struct {
			Skipped []map[string]string `json:"skipped"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		t.Fatalf("handle %q: %v", r.stdout, err)
	}
	if len(h.Stats.Skipped) != 1 || h.Stats.Skipped[0]["path"] != "agent.sock" || !strings.Contains(h.Stats.Skipped[0]["reason"], "socket") {
		t.Errorf("stats.skipped = %v; want one object {path: agent.sock, reason: ...socket...}", h.Stats.Skipped)
	}
	if e := checkJSONError(t, r.stderr, exitPartial, "partial"); str(e.Path) != "agent.sock" {
		t.Errorf("JSON error %s; want the path agent.sock", r.stderr)
	}

	r = bin.run(t, "", "", "--repo", repoDir, "backup", src)
	checkStderr(t, r.stderr, r.code)
	if r.code != exitPartial || !strings.Contains(r.stdout, "skipped  agent.sock: socket") {
		t.Errorf("backup: exit %d, stdout %q; want %d and the socket listed", r.code, r.stdout, exitPartial)
	}
	// The snapshot committed: what was skipped is the only difference.
	if r := bin.run(t, "", "", "--repo", repoDir, "restore", h.ID, filepath.Join(tmp, "dst")); r.code != 0 {
		t.Errorf("restore of the partial snapshot: exit %d, %s", r.code, r.stderr)
	}
}

// testExitCorrupt damages one pack: verify --read-data finds it (exit 15,
// the pack named as the JSON error's object), and so does a restore.
func testExitCorrupt(t *testing.T, bin binary) {
	tmp := t.TempDir()
	repoDir := filepath.Join(tmp, "repo")
	h := bin.backup(t, repoDir, makeSource(t), "--no-cache")
	packs, err := filepath.Glob(filepath.Join(repoDir, "packs", "*", "*"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no packs in %s (%v)", repoDir, err)
	}
	for _, p := range packs { // flip a byte in the middle of each pack
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0xff
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := bin.run(t, "", "", "--repo", repoDir, "verify", "--read-data", "--json")
	e := checkJSONError(t, r.stderr, exitCorrupt, "corrupt")
	if rel, err := filepath.Rel(repoDir, packs[0]); err != nil || str(e.Object) == "" || !strings.HasPrefix(str(e.Object), "packs/") ||
		!strings.Contains(r.stdout, str(e.Object)) || len(packs) == 1 && str(e.Object) != rel {
		t.Errorf("verify: JSON error %s, report %s; want a damaged pack named", r.stderr, r.stdout)
	}
	r = bin.run(t, "", "", "--repo", repoDir, "--no-cache", "restore", h.ID.String(), filepath.Join(tmp, "dst"), "--json")
	checkJSONError(t, r.stderr, exitCorrupt, "corrupt")
}

// testExitInterrupted sends SIGINT to a backup of a large tree while it
// runs (its lease exists): exit 130, code "interrupted", and no snapshot.
func testExitInterrupted(t *testing.T, bin binary) {
	tmp := t.TempDir()
	repoDir, src := filepath.Join(tmp, "repo"), filepath.Join(tmp, "src")
	if r := bin.run(t, "", "", "--repo", repoDir, "init"); r.code != 0 {
		t.Fatalf("init: %s", r.stderr)
	}
	// 64 MiB that does not compress: the local store writes and fsyncs
	// every pack, so the backup runs for a while after its lease appears.
	rng := mrand.NewChaCha8([32]byte{1})
	for i := range 16 {
		data := make([]byte, 4<<20)
		_, _ = rng.Read(data)
		p := filepath.Join(src, fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(string(bin), "--repo", repoDir, "--no-cache", "backup", src, "--json")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	running := false
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if leases, _ := os.ReadDir(filepath.Join(repoDir, "leases")); len(leases) > 0 {
			running = true
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !running || !errors.As(err, &exit) {
		t.Fatalf("backup: lease seen %v, wait %v; stdout %q, stderr %q", running, err, out.String(), errb.String())
	}
	if exit.ExitCode() != exitInterrupted || out.Len() != 0 {
		t.Errorf("interrupted backup: exit %d, stdout %q; want %d and no handle", exit.ExitCode(), out.String(), exitInterrupted)
	}
	checkJSONError(t, errb.String(), exitInterrupted, "interrupted")
	if snaps, _ := os.ReadDir(filepath.Join(repoDir, "snapshots")); len(snaps) != 0 {
		t.Errorf("an interrupted backup committed %d snapshots", len(snaps))
	}
}

// testVersion checks --version: the module version and Go's, and the
// commit when the go command stamped one (it does in a git checkout; not
// in a git worktree, nor without git).
func testVersion(t *testing.T, bin binary) {
	r := bin.run(t, "", "", "--version")
	line := strings.TrimSuffix(r.stdout, "\n")
	if r.code != 0 || !strings.HasPrefix(line, "sandsnap ") || !strings.HasSuffix(line, ", "+runtime.Version()) || strings.Contains(line, "\n") {
		t.Fatalf("--version: exit %d, stdout %q; want one line \"sandsnap VERSION, ..., %s\"", r.code, r.stdout, runtime.Version())
	}
	_, commit, stamped := strings.Cut(line, ", commit ")
	if !stamped {
		t.Logf("no commit in %q: the go command stamped none (not a git checkout?)", line)
		return
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("git rev-parse HEAD: %v", err)
	}
	if !strings.HasPrefix(commit, strings.TrimSpace(string(head))) {
		t.Errorf("--version says commit %q; HEAD is %s", commit, head)
	}
}

// TestSmallContract checks the small promises a program relies on: init
// and rm speak JSON, listings carry only the stats a snapshot records,
// "snapshots" is ls, and a name that looks like an ID prefix still
// resolves as a name.
func TestSmallContract(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	out, stderr, code := cli(t, "", "--repo", repoDir, "init", "--json")
	var created initOutput
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil || len(created.ID) != 32 || created.Location != repoDir {
		t.Fatalf("init --json: exit %d, stdout %q, stderr %q; want {id, location}", code, out, stderr)
	}
	h, _ := backupJSON(t, repoDir, makeSource(t), "--name", "20240101")

	ls, _, code := cli(t, "", "--repo", repoDir, "ls", "--json")
	alias, _, acode := cli(t, "", "--repo", repoDir, "snapshots", "--json")
	if code != 0 || acode != 0 || ls != alias {
		t.Errorf("snapshots --json = %q (exit %d); want ls --json's %q (exit %d)", alias, acode, ls, code)
	}
	show, _, _ := cli(t, "", "--repo", repoDir, "show", "20240101", "--json")
	for _, listing := range []string{ls, show} {
		if !strings.Contains(listing, `"files": 5`) || !strings.Contains(listing, h.ID.String()) {
			t.Errorf("listing %s: want the snapshot's ID and its 5 files", listing)
		}
		for _, unknown := range []string{"files_read", "bytes_read", "packs_uploaded", "bytes_uploaded", "seconds", "requests"} {
			if strings.Contains(listing, `"`+unknown+`"`) {
				t.Errorf("listing %s has %q, which only the backing-up process knows", listing, unknown)
			}
		}
	}

	out, stderr, code = cli(t, "", "--repo", repoDir, "rm", "20240101", "--json")
	var removed rmOutput
	if code != 0 || json.Unmarshal([]byte(out), &removed) != nil || len(removed.Removed) != 1 || removed.Removed[0] != h.ID {
		t.Errorf("rm --json of a name that looks like an ID prefix: exit %d, stdout %q, stderr %q; want {removed: [%s]}", code, out, stderr, h.ID)
	}
	out, stderr, code = cli(t, "", "--repo", repoDir, "rm", h.ID.String(), "--json")
	if code != exitNotFound || strings.TrimSpace(out) != "{\n  \"removed\": []\n}" {
		t.Errorf("rm --json of a removed snapshot: exit %d, stdout %q, stderr %q; want %d and {removed: []}", code, out, stderr, exitNotFound)
	}
	checkJSONError(t, stderr, exitNotFound, "not_found")
}

// testUnreachable checks the code of a store that cannot be reached.
func testUnreachable(t *testing.T, bin binary) {
	// Credentials of its own, so that the SDK does not look for them on
	// an instance metadata service (and log that it did).
	creds := []string{"AWS_ACCESS_KEY_ID=id", "AWS_SECRET_ACCESS_KEY=secret", "AWS_EC2_METADATA_DISABLED=true"}
	r := bin.runEnv(t, creds, "", "", "--repo", "s3://bucket/repo", "--endpoint", "http://127.0.0.1:1", "ls", "--json")
	if e := checkJSONError(t, r.stderr, exitError, "unavailable"); !strings.Contains(e.Message, "127.0.0.1:1") {
		t.Errorf("unreachable store: %s; want the endpoint named", r.stderr)
	}
}

// testS3Errors checks the codes of what the test S3 server refuses: a
// missing bucket (no repository there) and wrong credentials.
func testS3Errors(t *testing.T, bin binary) {
	endpoint, bucket := s3TestServer(t)
	missing := "s3://no-such-bucket-" + strings.ToLower(rand.Text())[:12] + "/repo"
	r := bin.run(t, "", "", "--repo", missing, "--endpoint", endpoint, "ls", "--json")
	if e := checkJSONError(t, r.stderr, exitNoRepository, "no_repository"); str(e.Object) != "config" {
		t.Errorf("missing bucket: %s; want the object config named", r.stderr)
	}
	r = bin.runEnv(t, []string{"AWS_SECRET_ACCESS_KEY=wrong"}, "", "", "--repo", "s3://"+bucket+"/contract", "--endpoint", endpoint, "ls", "--json")
	checkJSONError(t, r.stderr, exitError, "permission")
}
