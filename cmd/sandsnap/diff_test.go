package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/repo"
)

func TestDiffCommand(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	src := makeSource(t)
	a, _ := backupJSON(t, repoDir, src)
	if err := os.WriteFile(filepath.Join(src, "new.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "README.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "bin/run.sh"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := backupJSON(t, repoDir, src)
	human := "- README.md\nM bin/run.sh (mode)\n+ new.txt\n1 added, 1 removed, 1 changed\n"
	changes := []repo.Change{
		{Path: "README.md", Kind: "removed"},
		{Path: "bin/run.sh", Kind: "changed", What: []string{"mode"}},
		{Path: "new.txt", Kind: "added"},
	}
	tests := []struct {
		name string
		args []string
		code int
		want string        // stdout, exactly (human output)
		json []repo.Change // the parsed stdout (with --json)
	}{
		{"snapshots", []string{"diff", a.ID.String(), b.ID.String()}, 0, human, nil},
		{"directory", []string{"diff", a.ID.String()[:12], src}, 0, human, nil},
		{"directory by content", []string{"diff", a.ID.String(), src, "--content"}, 0, human, nil},
		{"json", []string{"diff", a.ID.String(), b.ID.String(), "--json"}, 0, "", changes},
		{"no change", []string{"diff", b.ID.String(), src}, 0, "0 added, 0 removed, 0 changed\n", nil},
		{"no change json", []string{"diff", b.ID.String(), b.ID.String(), "--json"}, 0, "", []repo.Change{}},
		{"missing B", []string{"diff", a.ID.String()}, 2, "", nil},
		{"unknown B", []string{"diff", a.ID.String(), "no-such-snapshot"}, exitNotFound, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := cli(t, "", append([]string{"--repo", repoDir}, tc.args...)...)
			checkStderr(t, stderr, code)
			if code != tc.code {
				t.Fatalf("exit %d; want %d (stderr %q)", code, tc.code, stderr)
			}
			if tc.json != nil {
				var got []repo.Change
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("diff --json output %q: %v", out, err)
				}
				if !reflect.DeepEqual(got, tc.json) {
					t.Errorf("diff --json = %+v; want %+v", got, tc.json)
				}
				return
			}
			if out != tc.want {
				t.Errorf("stdout = %q; want %q", out, tc.want)
			}
		})
	}
}

// cacheJSON is the part of backup and restore --json output about the
// host cache and the store below it.
type cacheJSON struct {
	ID     string  `json:"id"`
	Parent *string `json:"parent"`
	Stats  struct {
		FilesRead uint64           `json:"files_read"`
		Requests  map[string]int64 `json:"requests"`
		Cache     *struct {
			Hits   int64 `json:"hits"`
			Misses int64 `json:"misses"`
			Fills  int64 `json:"fills"`
		} `json:"cache"`
	} `json:"stats"`
}

func runJSON(t *testing.T, args ...string) cacheJSON {
	t.Helper()
	out, stderr, code := cli(t, "", args...)
	checkStderr(t, stderr, code)
	if code != 0 {
		t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
	}
	var v cacheJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: output %q: %v", args, out, err)
	}
	return v
}

func TestCacheFlags(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	tmp := t.TempDir()
	repoDir, cacheDir := filepath.Join(tmp, "repo"), filepath.Join(tmp, "cache")
	src := makeSource(t)
	g := []string{"--repo", repoDir, "--cache", cacheDir, "--cache-size", "64MiB"}

	// The backup's packs go into the cache as they are saved, so the
	// restore that follows on this host reads none from the store.
	bk := runJSON(t, append(g, "backup", src, "--json")...)
	if c := bk.Stats.Cache; c == nil || c.Fills == 0 {
		t.Errorf("backup stats.cache = %+v; want fills", c)
	}
	dst := filepath.Join(tmp, "dst")
	rs := runJSON(t, append(g, "restore", bk.ID, dst, "--json")...)
	if c := rs.Stats.Cache; c == nil || c.Hits == 0 || c.Fills != 0 {
		t.Errorf("restore stats.cache = %+v; want hits and no fills", c)
	}
	sameTree(t, src, dst)

	// --parent auto finds the snapshot dst was restored from, and no file
	// is read again.
	again := runJSON(t, append(g, "backup", dst, "--parent", "auto", "--json")...)
	if again.Parent == nil || *again.Parent != bk.ID || again.Stats.FilesRead != 0 {
		t.Errorf("backup --parent auto of a fresh restore: parent %v, files read %d; want parent %s, 0 read",
			again.Parent, again.Stats.FilesRead, bk.ID)
	}
	// --reread reads every file whatever the parent.
	re := runJSON(t, append(g, "backup", dst, "--parent", bk.ID, "--reread", "--json")...)
	if re.Stats.FilesRead == 0 {
		t.Errorf("backup --reread read no files")
	}

	// --no-cache: no cache counts, and the restore reads the store.
	nc := runJSON(t, "--repo", repoDir, "--no-cache", "restore", bk.ID, filepath.Join(tmp, "dst2"), "--json")
	if nc.Stats.Cache != nil || nc.Stats.Requests["get"] < 3 {
		t.Errorf("restore --no-cache: cache %+v, requests %v; want no cache and packs fetched", nc.Stats.Cache, nc.Stats.Requests)
	}

	_, stderr, code := cli(t, "", "--repo", repoDir, "--cache", cacheDir, "--cache-size", "lots", "restore", bk.ID, dst)
	if code != exitUsage || !strings.Contains(stderr, "--cache-size") {
		t.Errorf("bad --cache-size: exit %d, stderr %q; want 2 naming the flag", code, stderr)
	}

	// A default cache folder that cannot be made means no cache, quietly;
	// a --cache folder that cannot be made is an error.
	notDir := filepath.Join(src, "README.md")
	t.Setenv("XDG_CACHE_HOME", notDir)
	if v := runJSON(t, "--repo", repoDir, "restore", bk.ID, filepath.Join(tmp, "dst3"), "--json"); v.Stats.Cache != nil {
		t.Errorf("restore with an unusable default cache folder: cache %+v; want none", v.Stats.Cache)
	}
	_, stderr, code = cli(t, "", "--repo", repoDir, "--cache", notDir, "restore", bk.ID, filepath.Join(tmp, "dst4"))
	if code != exitError || !strings.Contains(stderr, "host cache") {
		t.Errorf("--cache at a file: exit %d, stderr %q; want 1 and \"host cache\"", code, stderr)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: an error
	}{
		{"4GiB", 4 << 30},
		{"4gib", 4 << 30},
		{"4G", 4 << 30},
		{"500MB", 500e6},
		{"500 MB", 500e6},
		{"64k", 64 << 10},
		{"1TB", 1e12},
		{"12345", 12345},
		{"12345b", 12345},
		{"", 0},
		{"0", 0},
		{"-1GiB", 0},
		{"1.5GiB", 0},
		{"GiB", 0},
		{"4 parsecs", 0},
		{"99999999999TiB", 0},
	}
	for _, tc := range tests {
		got, err := parseSize(tc.in)
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("parseSize(%q) = %d; want an error", tc.in, got)
		case tc.want != 0 && (err != nil || got != tc.want):
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
