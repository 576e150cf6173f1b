package repo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/counting"
	"github.com/sandsnap/sandsnap/store/mem"
)

// errDenied stands for a store that refuses to read one object.
var errDenied = errors.New("access denied")

// denyStore fails every Load of one object name.
type denyStore struct {
	store.Store
	name string
}

func (s denyStore) Load(ctx context.Context, name string, off, n int64, fn func(io.Reader) error) error {
	if name == s.name {
		return fmt.Errorf("load %s: %w", name, errDenied)
	}
	return s.Store.Load(ctx, name, off, n, fn)
}

// putSnapshotObject stores data as a snapshot object named by its hash,
// or by name when name is not empty, and returns the object's name.
func putSnapshotObject(t *testing.T, st store.Store, data []byte, name string) string {
	t.Helper()
	if name == "" {
		name = "snapshots/" + chunk.Hash(data).String()
	}
	mustDo(t, st.Save(context.Background(), name, data, store.SaveOptions{}))
	return name
}

// TestSnapshotsSkipBadObjects (#6): a snapshot object written by a newer
// sandsnap, one that is not JSON, one whose bytes do not match its name
// and one the store refuses to read are each left out of the listing and
// reported once, naming the object; the good snapshots are listed, and a
// name resolves, as before.
func TestSnapshotsSkipBadObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := mem.New()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("hello\n"))
	r := newTestRepo(t, base, repo.Options{})
	a := backupOf(t, r, src, repo.BackupOptions{Name: "web"})
	b := backupOf(t, r, src, repo.BackupOptions{Name: "api"})

	newer := fmt.Sprintf(`{"version":2,"tree":"%s","created":"%s"}`, a.ID, time.Now().UTC().Format(time.RFC3339))
	bad := []string{
		putSnapshotObject(t, base, []byte(newer), ""),
		putSnapshotObject(t, base, []byte("not json at all"), ""),
		putSnapshotObject(t, base, []byte("{}"), "snapshots/"+chunk.Hash([]byte("other bytes")).String()),
		putSnapshotObject(t, base, []byte("whatever"), ""),
	}
	st := denyStore{Store: base, name: bad[3]}
	var log syncLog
	r, err := repo.Open(ctx, st, repo.Options{Logf: log.logf})
	mustDo(t, err)

	var skipped []string
	hs, err := r.Snapshots(ctx, repo.ListOptions{OnSkip: func(object string, err error) {
		skipped = append(skipped, object)
		if !strings.Contains(err.Error(), object) {
			t.Errorf("skip error %q does not name %s", err, object)
		}
	}})
	mustDo(t, err)
	var got []chunk.ID
	for _, h := range hs {
		got = append(got, h.ID)
	}
	if len(got) != 2 || !slices.Contains(got, a.ID) || !slices.Contains(got, b.ID) {
		t.Errorf("listed %v; want the two good snapshots", got)
	}
	slices.Sort(skipped)
	slices.Sort(bad)
	if !slices.Equal(skipped, bad) {
		t.Errorf("skipped %q; want %q", skipped, bad)
	}

	// Without a callback the skips are logged, and a name still resolves.
	id, err := r.Resolve(ctx, "web", nil)
	if err != nil || id != a.ID {
		t.Errorf("Resolve(web) = %s, %v; want %s", id.Str(), err, a.ID.Str())
	}
	for _, name := range bad {
		if !log.has(name) {
			t.Errorf("nothing logged about %s: %q", name, log.lines)
		}
	}
	restoreOK(t, r, id, t.TempDir())
}

// TestOpenBadConfig (#6): a config object that is not one is reported as
// damaged, naming it, by Open and by OpenOrInit, which re-creates
// nothing over it.
func TestOpenBadConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, data := range []string{"", "not json", "{}", "null", `{"version":1}`} {
		st := mem.New()
		mustDo(t, st.Save(ctx, "config", []byte(data), store.SaveOptions{}))
		for _, open := range []func(context.Context, store.Store, repo.Options) (*repo.Repository, error){repo.Open, repo.OpenOrInit} {
			_, err := open(ctx, st, repo.Options{})
			if !errors.Is(err, repo.ErrBadConfig) || !strings.Contains(err.Error(), "config") {
				t.Errorf("open with config %q: %v; want ErrBadConfig naming the object", data, err)
			}
		}
		got, err := store.LoadAll(ctx, st, "config", 0, 0)
		if err != nil || string(got) != data {
			t.Errorf("config %q became %q (%v)", data, got, err)
		}
	}
}

// TestOpenOrInitConfigMissing (#6): a store that holds packs, index
// deltas or snapshots but no config is refused with ErrConfigMissing
// (naming an object) rather than given a new config with a new chunker
// polynomial, at the cost of at most one LIST per prefix; an empty store
// is initialised.
func TestOpenOrInitConfigMissing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("hello\n"))
	full := mem.New()
	backupOf(t, newTestRepo(t, full, repo.Options{}), src, repo.BackupOptions{})
	for _, keep := range []string{"packs/", "index/", "snapshots/"} {
		st := mem.New()
		mustDo(t, full.List(ctx, keep, func(fi store.Info) error {
			data, err := store.LoadAll(ctx, full, fi.Name, 0, 0)
			if err != nil {
				return err
			}
			return st.Save(ctx, fi.Name, data, store.SaveOptions{})
		}))
		cs := counting.New(st)
		_, err := repo.OpenOrInit(ctx, cs, repo.Options{})
		if !errors.Is(err, repo.ErrConfigMissing) || !strings.Contains(err.Error(), keep) {
			t.Errorf("OpenOrInit with only %s: %v; want ErrConfigMissing naming an object there", keep, err)
		}
		if n := cs.Stats().Lists; n > 3 {
			t.Errorf("OpenOrInit with only %s listed %d times; want at most 3", keep, n)
		}
		if _, err := st.Stat(ctx, "config"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("OpenOrInit with only %s created a config (%v)", keep, err)
		}
	}
	if _, err := repo.OpenOrInit(ctx, mem.New(), repo.Options{}); err != nil {
		t.Errorf("OpenOrInit of an empty store: %v", err)
	}
}
