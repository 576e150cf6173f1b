package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/internal/fstree"
	"github.com/sandsnap/sandsnap/repo"
)

// cli runs one command line in-process.
func cli(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// checkStderr fails unless stderr is right for exit status code: empty on
// success and for a partial result, otherwise exactly one "sandsnap: "
// line first.
func checkStderr(t *testing.T, stderr string, code int) {
	t.Helper()
	if code == exitOK || code == exitPartial {
		if stderr != "" {
			t.Errorf("stderr with exit status %d = %q; want nothing", code, stderr)
		}
		return
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "sandsnap: ") {
			n++
		}
	}
	if n != 1 || !strings.HasPrefix(lines[0], "sandsnap: ") {
		t.Errorf("stderr = %q; want exactly one line starting with \"sandsnap: \", first", stderr)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		t.Errorf("stderr has a panic trace: %q", stderr)
	}
}

// checkJSONError fails unless stderr is exactly one JSON error object on
// one line, with the code and exit status given, and returns it.
func checkJSONError(t *testing.T, stderr string, exit int, code string) jsonError {
	t.Helper()
	var e jsonError
	dec := json.NewDecoder(strings.NewReader(stderr))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "}\n") {
		t.Errorf("stderr %q: want one JSON object on one line (%v)", stderr, err)
		return e
	}
	if e.Code != code || e.Exit != exit || e.Message == "" || strings.Contains(e.Message, "repo: ") {
		t.Errorf("JSON error %+v; want code %q, exit %d and a message without package prefixes", e, code, exit)
	}
	if strings.Contains(stderr, "goroutine ") {
		t.Errorf("stderr has a panic trace: %q", stderr)
	}
	return e
}

// makeSource writes a small tree with the kinds of entries a sandbox holds.
func makeSource(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	files := []struct {
		name string
		body string
		mode os.FileMode
	}{
		{"README.md", "# hello\n", 0o644},
		{"bin/run.sh", "#!/bin/sh\necho hi\n", 0o755},
		{"node_modules/left-pad/index.js", strings.Repeat("module.exports = 1;\n", 3000), 0o644},
		{"node_modules/left-pad/package.json", `{"name":"left-pad"}`, 0o600},
		{"empty", "", 0o644},
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("README.md", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// backupJSON backs src up into repoDir and returns the handle.
func backupJSON(t *testing.T, repoDir, src string, extra ...string) (repo.Handle, string) {
	t.Helper()
	args := append([]string{"--repo", repoDir, "backup", src, "--json"}, extra...)
	out, stderr, code := cli(t, "", args...)
	if code != 0 {
		t.Fatalf("backup: exit %d, stderr %q", code, stderr)
	}
	checkStderr(t, stderr, code)
	var h repo.Handle
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("backup --json output %q: %v", out, err)
	}
	return h, out
}

func sameTree(t *testing.T, want, got string) {
	t.Helper()
	diffs, err := fstree.CompareWith(want, got, fstree.Options{IgnoreRootMeta: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("restored tree differs: %s", d)
	}
}

func TestBackupRestore(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	src := makeSource(t)
	h, handleJSON := backupJSON(t, repoDir, src, "--name", "dev-box", "--ttl", "2d")
	if h.ID.IsZero() || h.Name != "dev-box" || h.Expires == nil || h.Stats.Files != 5 {
		t.Errorf("handle = %+v; want an ID, name dev-box, an expiry and 5 files", h)
	}
	if h.Stats.Requests["put"] == 0 || h.Stats.Requests["bytes_up"] == 0 {
		t.Errorf("handle requests = %v; want puts counted", h.Stats.Requests)
	}
	handleFile := filepath.Join(t.TempDir(), "handle.json")
	if err := os.WriteFile(handleFile, []byte(handleJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		handle string
		stdin  string
	}{
		{"id", h.ID.String(), ""},
		{"id prefix", h.ID.String()[:12], ""},
		{"stdin", "-", handleJSON},
		{"handle file", handleFile, ""},
		{"name", "dev-box", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			out, stderr, code := cli(t, tt.stdin, "--repo", repoDir, "restore", tt.handle, dst, "--json")
			checkStderr(t, stderr, code)
			if code != 0 {
				t.Fatalf("restore: exit %d, stderr %q", code, stderr)
			}
			var got struct {
				ID    string `json:"id"`
				Dir   string `json:"dir"`
				Stats struct {
					Files    uint64           `json:"files"`
					Requests map[string]int64 `json:"requests"`
				} `json:"stats"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("restore --json output %q: %v", out, err)
			}
			if got.ID != h.ID.String() || got.Dir != dst || got.Stats.Files != 5 || got.Stats.Requests["get"] == 0 {
				t.Errorf("restore output = %+v; want id %s, dir %s, 5 files, gets counted", got, h.ID, dst)
			}
			sameTree(t, src, dst)
		})
	}
}

func TestHumanOutput(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	src := makeSource(t)
	out, stderr, code := cli(t, "", "--repo", repoDir, "backup", src, "--name", "box")
	// The one line on stderr says that backup created the repository.
	if code != 0 || !strings.HasPrefix(stderr, "created sandsnap repository ") || !strings.HasSuffix(stderr, " at "+repoDir+"\n") ||
		strings.Count(stderr, "\n") != 1 {
		t.Errorf("backup into a new repository: exit %d, stderr %q; want one line saying it created it", code, stderr)
	}
	first, _, _ := strings.Cut(out, "\n")
	id, ok := strings.CutPrefix(first, "snapshot ")
	if code != 0 || !ok || len(id) != 64 {
		t.Fatalf("backup output %q (exit %d); want the ID on the first line", out, code)
	}
	t.Setenv("SANDSNAP_REPO", repoDir) // the rest find the repository by environment
	dst := filepath.Join(t.TempDir(), "dst")
	tests := []struct {
		args []string
		want []string // substrings of stdout
	}{
		{[]string{"ls"}, []string{"ID", "EXPIRES", id[:shortIDLen], "box", "never"}},
		{[]string{"ls", "--json"}, []string{`"id": "` + id}},
		{[]string{"ls", "--name", "other", "--json"}, []string{"[]"}},
		{[]string{"show", "box"}, []string{"snapshot " + id, "files    5"}},
		{[]string{"show", id[:10], "--json"}, []string{`"id": "` + id, `"snapshot": {`, `"tree"`}},
		{[]string{"restore", "box", dst}, []string{"restored " + id, "files    5"}},
		{[]string{"verify"}, []string{"1 snapshots", "0 problems"}},
		{[]string{"verify", "--read-data", "--json"}, []string{`"problems": []`, `"snapshots": 1`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, stderr, code := cli(t, "", tt.args...)
			checkStderr(t, stderr, code)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout = %q; want it to contain %q", out, w)
				}
			}
		})
	}
	sameTree(t, src, dst)
}

func TestErrors(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	src := makeSource(t)
	backupJSON(t, repoDir, src)
	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	unknown := strings.Repeat("ab", 32)
	tests := []struct {
		name  string
		args  []string
		code  int
		wants []string // substrings of stderr
	}{
		{"backup of missing dir", []string{"--repo", repoDir, "backup", missing}, 1,
			[]string{"no such file or directory", missing}},
		{"backup of a file", []string{"--repo", repoDir, "backup", filepath.Join(src, "README.md")}, 1,
			[]string{"not a directory"}},
		{"restore unknown id", []string{"--repo", repoDir, "restore", unknown, t.TempDir()}, exitNotFound,
			[]string{"not found", unknown[:8]}},
		{"restore unknown name", []string{"--repo", repoDir, "restore", "nope", t.TempDir()}, exitNotFound,
			[]string{"not found", "nope"}},
		{"restore without repository", []string{"--repo", empty, "restore", unknown, t.TempDir()}, exitNoRepository,
			[]string{"no sandsnap repository at " + empty}},
		{"ls of missing path", []string{"--repo", missing, "ls"}, exitNoRepository,
			[]string{"no sandsnap repository at " + missing}},
		{"no repo", []string{"ls"}, 2,
			[]string{"sandsnap: no repository: give --repo or set SANDSNAP_REPO"}},
		{"init twice", []string{"--repo", repoDir, "init"}, 1, []string{"already exists"}},
		{"bad ttl", []string{"--repo", repoDir, "backup", src, "--ttl", "soon"}, 2, []string{"--ttl"}},
		{"unknown flag", []string{"--repo", repoDir, "ls", "--colour"}, 2, []string{"colour"}},
		{"unknown command", []string{"--repo", repoDir, "frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{"no command", nil, 2, []string{"missing command"}},
		{"missing DIR", []string{"--repo", repoDir, "restore", unknown}, 2, []string{"missing DIR"}},
		{"extra argument", []string{"--repo", repoDir, "show", "x", "y"}, 2, []string{`unexpected argument "y"`}},
		{"bad stdin handle", []string{"--repo", repoDir, "show", "-"}, 1, []string{"stdin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := cli(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit %d; want %d (stderr %q)", code, tt.code, stderr)
			}
			checkStderr(t, stderr, code)
			for _, w := range tt.wants {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr = %q; want it to contain %q", stderr, w)
				}
			}
			if out != "" {
				t.Errorf("stdout = %q; want nothing on error", out)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(missing)); !os.IsNotExist(err) {
		t.Errorf("a failed command created %s", missing)
	}
}

func TestInit(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "new", "repo")
	out, stderr, code := cli(t, "", "--repo", repoDir, "init")
	checkStderr(t, stderr, code)
	if code != 0 || !strings.Contains(out, "created sandsnap repository") {
		t.Fatalf("init: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	out, stderr, code = cli(t, "", "--repo", "file://"+repoDir, "ls", "--json")
	checkStderr(t, stderr, code)
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("ls of a new repository: exit %d, stdout %q; want []", code, out)
	}

	// --compression is written into the config; a bad level is a usage
	// error that creates nothing.
	better := filepath.Join(t.TempDir(), "better")
	if _, stderr, code := cli(t, "", "--repo", better, "init", "--compression", "better"); code != 0 {
		t.Fatalf("init --compression better: exit %d, %s", code, stderr)
	}
	cfg, err := os.ReadFile(filepath.Join(better, "config"))
	if err != nil || !strings.Contains(string(cfg), `"compression": "better"`) {
		t.Errorf("config after init --compression better: %s, %v", cfg, err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	_, stderr, code = cli(t, "", "--repo", bad, "init", "--compression", "max")
	if code != 2 || !strings.Contains(stderr, "unknown compression") {
		t.Errorf("init --compression max: exit %d, stderr %q; want a usage error", code, stderr)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a refused init created %s (%v)", bad, err)
	}
}

func TestParseTTL(t *testing.T) {
	tests := []struct {
		in   string
		want string // time.Duration.String(), or "" for an error
	}{
		{"", "0s"},
		{"72h", "72h0m0s"},
		{"30m", "30m0s"},
		{"7d", "168h0m0s"},
		{"1d12h", "36h0m0s"},
		{"d", ""},
		{"xd", ""},
		{"-1h", ""},
		{"0d", ""},
		{"1d-2h", ""},
		{"soon", ""},
		{"1.5d", ""},
	}
	for _, tt := range tests {
		d, err := parseTTL(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("parseTTL(%q) = %v; want an error", tt.in, d)
		case tt.want != "" && (err != nil || d.String() != tt.want):
			t.Errorf("parseTTL(%q) = %v, %v; want %s", tt.in, d, err, tt.want)
		}
	}
}

// TestInterrupt checks that a cancelled context (what Ctrl-C does) fails
// the backup with one error line and commits no snapshot.
func TestInterrupt(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	if _, stderr, code := cli(t, "", "--repo", repoDir, "init"); code != 0 {
		t.Fatalf("init: %q", stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"--repo", repoDir, "backup", makeSource(t)}, strings.NewReader(""), &out, &errb)
	if code != exitInterrupted || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("cancelled backup: exit %d, stderr %q; want %d and \"interrupted\"", code, errb.String(), exitInterrupted)
	}
	checkStderr(t, errb.String(), code)
	list, stderr, code := cli(t, "", "--repo", repoDir, "ls", "--all", "--json")
	if code != 0 || strings.TrimSpace(list) != "[]" {
		t.Errorf("after a cancelled backup: ls = %q (exit %d, stderr %q); want []", list, code, stderr)
	}
}

// TestVerifyProblems checks that verify names a missing pack on stdout,
// prints one error line (or JSON object) naming it and exits 15.
func TestVerifyProblems(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	backupJSON(t, repoDir, makeSource(t))
	packs, err := filepath.Glob(filepath.Join(repoDir, "packs", "*", "*"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no packs in %s (%v)", repoDir, err)
	}
	if err := os.Remove(packs[0]); err != nil {
		t.Fatal(err)
	}
	name := "packs/" + filepath.Base(filepath.Dir(packs[0])) + "/" + filepath.Base(packs[0])
	for _, args := range [][]string{{"verify"}, {"verify", "--json"}} {
		out, stderr, code := cli(t, "", append([]string{"--repo", repoDir}, args...)...)
		if code != exitCorrupt {
			t.Errorf("%v: exit %d; want %d", args, code, exitCorrupt)
		}
		if len(args) == 2 {
			if e := checkJSONError(t, stderr, code, "corrupt"); e.Object == nil || *e.Object != name {
				t.Errorf("%v: error object %+v; want the object %s", args, e, name)
			}
		} else {
			checkStderr(t, stderr, code)
		}
		if !strings.Contains(out, name) || !strings.Contains(stderr, "verify found") {
			t.Errorf("%v: stdout %q, stderr %q; want the pack %s named and \"verify found\"", args, out, stderr, name)
		}
	}
}
