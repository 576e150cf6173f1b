package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/repo"
)

// catLsFixture backs makeSource's tree up as snapshot "box" and returns
// its source, its handle and a runner of command lines on its repository
// (stderr checked).
func catLsFixture(t *testing.T) (string, repo.Handle, func(args ...string) (string, string, int)) {
	t.Helper()
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	src := makeSource(t)
	h, _ := backupJSON(t, repoDir, src, "--name", "box")
	g := []string{"--repo", repoDir, "--cache", t.TempDir()}
	return src, h, func(args ...string) (string, string, int) {
		t.Helper()
		out, stderr, code := cli(t, "", append(g, args...)...)
		checkStderr(t, stderr, code)
		return out, stderr, code
	}
}

// TestCatLs: cat writes a file's bytes, ls lists a snapshot's directory
// as ls -l does or as JSON.
func TestCatLs(t *testing.T) {
	src, h, run := catLsFixture(t)

	for _, name := range []string{"README.md", "/node_modules/left-pad/index.js", "empty"} {
		want, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(strings.TrimPrefix(name, "/"))))
		if err != nil {
			t.Fatal(err)
		}
		if out, stderr, code := run("cat", h.ID.String()[:12], name); code != 0 || out != string(want) {
			t.Errorf("cat %s: exit %d, %d bytes (stderr %q); want the file's %d", name, code, len(out), stderr, len(want))
		}
	}

	out, _, code := run("ls", "box")
	for _, want := range []string{
		"-rw-r--r-- 0 0 8 ", " README.md\n",
		"drwxr-xr-x ", " bin\n",
		"lrwxrwxrwx ", " link -> README.md\n",
		" node_modules\n", " empty\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("ls box: exit %d, output:\n%s\nwant it to contain %q", code, out, want)
		}
	}
	if n := strings.Count(out, "\n"); n != 5 {
		t.Errorf("ls box: %d lines; want 5", n)
	}

	out, _, code = run("ls", "box", "node_modules/left-pad/", "--json")
	var entries []lsEntry
	if err := json.Unmarshal([]byte(out), &entries); code != 0 || err != nil {
		t.Fatalf("ls --json: exit %d, %v:\n%s", code, err, out)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name+" "+e.Type+" "+e.Mode)
	}
	if want := []string{"index.js file 0644", "package.json file 0600"}; !slices.Equal(names, want) {
		t.Errorf("ls --json entries %q; want %q", names, want)
	}
	if len(entries) == 2 && entries[0].Size != int64(len(strings.Repeat("module.exports = 1;\n", 3000))) {
		t.Errorf("index.js size %d", entries[0].Size)
	}

	out, _, code = run("ls", "box", "link")
	if code != 0 || !strings.HasPrefix(out, "lrwxrwxrwx") || !strings.HasSuffix(out, " link -> README.md\n") {
		t.Errorf("ls of one symlink: exit %d, %q; want its line, not its target's", code, out)
	}
}

// TestCatLsErrors: cat and ls refuse what they cannot do with one error
// line naming the path, the snapshot or the argument.
func TestCatLsErrors(t *testing.T) {
	_, h, run := catLsFixture(t)
	for _, tt := range []struct {
		args  []string
		code  int
		wants []string
	}{
		{[]string{"cat", "box", "link"}, 1, []string{"link is a symbolic link to README.md", "does not follow"}},
		{[]string{"cat", "box", "bin"}, 1, []string{"bin is a directory"}},
		{[]string{"cat", "box", "nope"}, 1, []string{"nope", "does not exist", h.ID.String()[:12]}},
		{[]string{"cat", "box", "bin/run.sh/x"}, 1, []string{"bin/run.sh is not a directory"}},
		{[]string{"cat", "box", "../etc/passwd"}, 2, []string{"../etc/passwd", `".."`}},
		{[]string{"cat", "box"}, 2, []string{"missing PATH"}},
		{[]string{"ls", "box", "a//b"}, 2, []string{"empty elements"}},
		{[]string{"ls", "box", "--all"}, 2, []string{"--name and --all"}},
		{[]string{"ls", "box", "bin", "x"}, 2, []string{`unexpected argument "x"`}},
		{[]string{"ls", "nosuchname"}, 13, []string{"not found"}},
	} {
		out, stderr, code := run(tt.args...)
		if code != tt.code || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want %d and nothing", tt.args, code, out, tt.code)
		}
		for _, w := range tt.wants {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr %q; want it to contain %q", tt.args, stderr, w)
			}
		}
	}
}

func TestModeString(t *testing.T) {
	for _, tt := range []struct {
		typ  string
		mode uint32
		want string
	}{
		{"file", 0o644, "-rw-r--r--"},
		{"file", 0o4755, "-rwsr-xr-x"},
		{"file", 0o4644, "-rwSr--r--"},
		{"dir", 0o2755, "drwxr-sr-x"},
		{"dir", 0o1777, "drwxrwxrwt"},
		{"dir", 0o1770, "drwxrwx--T"},
		{"symlink", 0o777, "lrwxrwxrwx"},
		{"fifo", 0o640, "prw-r-----"},
		{"file", 0, "----------"},
	} {
		if got := modeString(lsEntry{Type: tt.typ, bits: tt.mode}); got != tt.want {
			t.Errorf("modeString(%s %04o) = %q; want %q", tt.typ, tt.mode, got, tt.want)
		}
	}
}
