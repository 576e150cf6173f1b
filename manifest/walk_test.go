package manifest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/chunk"
)

func walkPaths(t *testing.T, m *memTrees, root chunk.ID, skip map[string]error) ([]string, error) {
	t.Helper()
	var got []string
	err := Walk(context.Background(), m.load, root, func(p string, n *Node) error {
		if !strings.HasSuffix(p, n.Name) {
			t.Errorf("path %q does not end in node name %q", p, n.Name)
		}
		got = append(got, p)
		return skip[p]
	})
	return got, err
}

func TestWalk(t *testing.T) {
	m := newMemTrees()
	root := m.build(t, dir{
		"b": "B",
		"a": dir{"z": "Z", "y": dir{"deep": ""}},
		"c": dir{},
		"d": "",
		"e": dir{"1": "", "2": "", "3": ""},
	})
	sub := func(path ...string) chunk.ID {
		tr, _ := DecodeTree(m.blobs[root])
		var n *Node
		for _, name := range path {
			n, _ = tr.Find(name)
			tr, _ = DecodeTree(m.blobs[n.Subtree])
		}
		return n.Subtree
	}
	aID, ayID, eID := sub("a"), sub("a", "y"), sub("e")
	boom := errors.New("boom")
	tests := []struct {
		name    string
		skip    map[string]error
		want    []string
		wantErr error
		noLoad  []chunk.ID
	}{
		{"all", nil, []string{"a", "a/y", "a/y/deep", "a/z", "b", "c", "d", "e", "e/1", "e/2", "e/3"}, nil, nil},
		{"SkipDir on a dir", map[string]error{"a": SkipDir}, []string{"a", "b", "c", "d", "e", "e/1", "e/2", "e/3"}, nil, []chunk.ID{aID, ayID}},
		{"SkipDir on a file", map[string]error{"e/1": SkipDir, "b": nil}, []string{"a", "a/y", "a/y/deep", "a/z", "b", "c", "d", "e", "e/1"}, nil, nil},
		{"SkipDir on a root file", map[string]error{"b": SkipDir}, []string{"a", "a/y", "a/y/deep", "a/z", "b"}, nil, []chunk.ID{eID}},
		{"error stops", map[string]error{"a/y": boom}, []string{"a", "a/y"}, boom, []chunk.ID{ayID, eID}},
		{"wrapped SkipDir", map[string]error{"a": fmt.Errorf("x: %w", SkipDir)}, []string{"a", "b", "c", "d", "e", "e/1", "e/2", "e/3"}, nil, []chunk.ID{aID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clear(m.loads)
			got, err := walkPaths(t, m, root, tt.skip)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Walk error = %v; want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("paths = %q;\nwant %q", got, tt.want)
			}
			for _, id := range tt.noLoad {
				if m.loads[id] != 0 {
					t.Errorf("tree %s loaded %d times; want 0", id.Str(), m.loads[id])
				}
			}
			if m.loads[root] != 1 {
				t.Errorf("root loaded %d times; want 1", m.loads[root])
			}
		})
	}
}

func TestWalkErrors(t *testing.T) {
	m := newMemTrees()
	missing := id("missing")
	root := m.put(t, &Tree{Nodes: []Node{{Name: "sub dir", Type: TypeDir, Subtree: missing}}})

	err := Walk(context.Background(), m.load, root, func(string, *Node) error { return nil })
	if !errors.Is(err, errNotFound) || !strings.Contains(err.Error(), `"sub dir"`) || !strings.Contains(err.Error(), missing.Str()) {
		t.Errorf("error %v; want errNotFound naming the path and tree", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	clear(m.loads)
	if err := Walk(ctx, m.load, root, func(string, *Node) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Walk error = %v; want context.Canceled", err)
	}
	if n := m.totalLoads(); n != 0 {
		t.Errorf("cancelled Walk loaded %d trees", n)
	}

	calls := 0
	if err := Walk(context.Background(), m.load, chunk.ID{}, func(string, *Node) error { calls++; return nil }); err != nil || calls != 0 {
		t.Errorf("Walk of the zero root: %v, %d calls; want nil, 0", err, calls)
	}

	nilLoader := func(context.Context, chunk.ID) (*Tree, error) { return nil, nil }
	if err := Walk(context.Background(), nilLoader, root, func(string, *Node) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Walk with a loader returning nil: %v; want ErrCorrupt", err)
	}
}

// TestWalkCycle feeds Walk and Diff a loader that returns a tree naming
// itself, which a verified repository cannot hold; they must stop.
func TestWalkCycle(t *testing.T) {
	self := &Tree{Nodes: []Node{{Name: "d", Type: TypeDir, Subtree: id("self")}}}
	load := func(context.Context, chunk.ID) (*Tree, error) { return self, nil }
	if err := Walk(context.Background(), load, id("self"), func(string, *Node) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Walk of a cycle: %v; want ErrCorrupt", err)
	}
	other := &Tree{Nodes: []Node{{Name: "d", Type: TypeDir, Subtree: id("other")}}}
	load2 := func(_ context.Context, i chunk.ID) (*Tree, error) {
		if i == id("self") {
			return self, nil
		}
		return other, nil
	}
	if err := Diff(context.Background(), load2, id("self"), id("other"), func(Change) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Diff of cycles: %v; want ErrCorrupt", err)
	}
}

// change is a Change in a comparable form.
type change struct {
	path, kind string
	oldType    NodeType
	newType    NodeType
}

func collect(t *testing.T, m *memTrees, a, b chunk.ID, skip map[string]bool) []change {
	t.Helper()
	var got []change
	err := Diff(context.Background(), m.load, a, b, func(c Change) error {
		var ch change
		ch.path, ch.kind = c.Path, c.Kind.String()
		if c.Old != nil {
			ch.oldType = c.Old.Type
		}
		if c.New != nil {
			ch.newType = c.New.Type
		}
		if (c.Kind == Added) != (c.Old == nil) || (c.Kind == Removed) != (c.New == nil) {
			t.Errorf("change %+v: Old/New do not match the kind", c)
		}
		got = append(got, ch)
		if skip[c.Path] {
			return SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	return got
}

func TestDiff(t *testing.T) {
	const F, D, L = TypeFile, TypeDir, TypeSymlink
	m := newMemTrees()
	// node_modules is large and shared: Diff must never load it.
	modules := dir{}
	for i := range 50 {
		modules[fmt.Sprintf("pkg%02d", i)] = dir{"index.js": fmt.Sprint(i), "package.json": "{}"}
	}
	old := dir{
		"node_modules": modules,
		"src":          dir{"main.go": "v1", "util.go": "same", "gone.go": "x"},
		"README":       "readme",
		"was-file":     "f",
		"was-dir":      dir{"inner": "i", "deeper": dir{"leaf": "l"}},
		"mode-dir":     dir{"keep": "k"},
		"removed-dir":  dir{"r1": "", "r2": dir{"r3": ""}},
		"link":         Node{Type: L, Mode: 0o777, Target: "README"},
	}
	changed := dir{
		"node_modules": modules,
		"src":          dir{"main.go": "v2", "util.go": "same", "new.go": "n"},
		"README":       "readme",
		"was-file":     dir{"now": "dir"},
		"was-dir":      "now a file",
		"mode-dir":     Node{Type: D, Mode: 0o700, Subtree: m.build(t, dir{"keep": "k"})},
		"added-dir":    dir{"a1": "", "a2": dir{"a3": ""}},
		"link":         Node{Type: L, Mode: 0o777, Target: "src/main.go"},
	}
	a, b := m.build(t, old), m.build(t, changed)
	modulesID := m.build(t, modules)
	clear(m.loads)

	got := collect(t, m, a, b, nil)
	want := []change{
		{"added-dir", "added", 0, D},
		{"added-dir/a1", "added", 0, F},
		{"added-dir/a2", "added", 0, D},
		{"added-dir/a2/a3", "added", 0, F},
		{"link", "modified", L, L},
		{"mode-dir", "modified", D, D},
		{"removed-dir", "removed", D, 0},
		{"removed-dir/r1", "removed", F, 0},
		{"removed-dir/r2", "removed", D, 0},
		{"removed-dir/r2/r3", "removed", F, 0},
		{"src/gone.go", "removed", F, 0},
		{"src/main.go", "modified", F, F},
		{"src/new.go", "added", 0, F},
		{"was-dir", "removed", D, 0},
		{"was-dir/deeper", "removed", D, 0},
		{"was-dir/deeper/leaf", "removed", F, 0},
		{"was-dir/inner", "removed", F, 0},
		{"was-dir", "added", 0, F},
		{"was-file", "removed", F, 0},
		{"was-file", "added", 0, D},
		{"was-file/now", "added", 0, F},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff changes:\n got %v\nwant %v", got, want)
	}
	if m.loads[modulesID] != 0 {
		t.Errorf("identical node_modules tree loaded %d times; want 0", m.loads[modulesID])
	}
	for id, n := range m.loads {
		if n != 1 {
			t.Errorf("tree %s loaded %d times; want once", id.Str(), n)
		}
	}
	// root a, root b, src x2, was-file's new dir, was-dir's old dir and its
	// deeper dir, added-dir and a2, removed-dir and r2 (mode-dir's
	// subtree is the same tree on both sides).
	if n := m.totalLoads(); n != 11 {
		t.Errorf("Diff loaded %d trees; want 11", n)
	}

	t.Run("reverse", func(t *testing.T) {
		rev := collect(t, m, b, a, nil)
		if len(rev) != len(want) {
			t.Errorf("reverse Diff found %d changes; want %d", len(rev), len(want))
		}
		for _, c := range rev {
			if c.kind != "added" && strings.HasPrefix(c.path, "removed-dir") || c.kind != "removed" && strings.HasPrefix(c.path, "added-dir") {
				t.Errorf("reverse: %+v", c)
			}
		}
	})

	t.Run("same root loads nothing", func(t *testing.T) {
		clear(m.loads)
		if got := collect(t, m, a, a, nil); len(got) != 0 {
			t.Errorf("Diff(a, a) = %v; want none", got)
		}
		if n := m.totalLoads(); n != 0 {
			t.Errorf("Diff(a, a) loaded %d trees; want 0", n)
		}
	})

	t.Run("SkipDir", func(t *testing.T) {
		clear(m.loads)
		got := collect(t, m, a, b, map[string]bool{"added-dir": true, "removed-dir": true, "mode-dir": true, "src/gone.go": true})
		for _, c := range got {
			if strings.HasPrefix(c.path, "added-dir/") || strings.HasPrefix(c.path, "removed-dir/") || c.path == "src/main.go" || c.path == "src/new.go" {
				t.Errorf("change %+v reported despite SkipDir", c)
			}
		}
		if m.loads[m.build(t, dir{"a1": "", "a2": dir{"a3": ""}})] != 0 {
			t.Errorf("skipped added-dir was loaded")
		}
		if got[len(got)-1].path != "was-file/now" {
			t.Errorf("changes after the skipped ones are missing: %v", got)
		}
	})

	t.Run("from empty", func(t *testing.T) {
		got := collect(t, m, chunk.ID{}, m.build(t, dir{"x": dir{"y": ""}, "z": ""}), nil)
		want := []change{{"x", "added", 0, D}, {"x/y", "added", 0, F}, {"z", "added", 0, F}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Diff from the zero ID = %v; want %v", got, want)
		}
	})

	t.Run("error stops", func(t *testing.T) {
		boom := errors.New("boom")
		calls := 0
		err := Diff(context.Background(), m.load, a, b, func(Change) error { calls++; return boom })
		if !errors.Is(err, boom) || calls != 1 {
			t.Errorf("Diff = %v after %d calls; want boom after 1", err, calls)
		}
	})

	t.Run("load error", func(t *testing.T) {
		bad := m.put(t, &Tree{Nodes: []Node{{Name: "src", Type: TypeDir, Subtree: id("missing")}}})
		err := Diff(context.Background(), m.load, a, bad, func(Change) error { return nil })
		if !errors.Is(err, errNotFound) || !strings.Contains(err.Error(), `"src"`) {
			t.Errorf("Diff = %v; want errNotFound naming src", err)
		}
	})
}

func TestChangeKindString(t *testing.T) {
	for k, want := range map[ChangeKind]string{Added: "added", Removed: "removed", Modified: "modified", 0: "kind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("ChangeKind(%d).String() = %q; want %q", uint8(k), got, want)
		}
	}
}
