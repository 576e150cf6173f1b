package cache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/cache"
	"github.com/sandsnap/sandsnap/store/local"
)

// The multi-process test re-runs this test binary as helper processes; the
// environment tells a helper what to do.
const (
	envHelper = "CACHE_HELPER"    // "1" in a helper
	envStore  = "CACHE_STORE_DIR" // the local store's folder
	envCache  = "CACHE_DIR"       // the shared cache folder
	envLog    = "CACHE_LOG"       // file that gets one line per inner Load
	envGo     = "CACHE_GO"        // file whose creation starts the helpers
)

// helperObjects are the objects each helper loads, and loadsPerObject the
// concurrent range Loads it makes of each.
var helperObjects = []string{"packs/aa/one", "packs/bb/two", "index/three"}

const loadsPerObject = 4

func TestMain(m *testing.M) {
	if os.Getenv(envHelper) == "1" {
		if err := helperMain(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// loggingStore appends a line naming the object to a shared file for each
// Load, so that the parent counts inner Loads across processes. Each line
// is one O_APPEND write, which the kernel does not interleave. Loads are
// slowed down so that the helpers' fills overlap.
type loggingStore struct {
	store.Store
	log string
}

func (l loggingStore) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	f, err := os.OpenFile(l.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s\n", name)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	time.Sleep(50 * time.Millisecond)
	return l.Store.Load(ctx, name, offset, length, fn)
}

// helperMain waits for the go file, loads every helper object in
// concurrent ranges through a cache over the logging local store, checks
// the bytes against the store, loads each object once more, and prints its
// cache.Stats as JSON.
func helperMain() error {
	ctx := context.Background()
	ls, err := local.Open(os.Getenv(envStore))
	if err != nil {
		return err
	}
	c, err := cache.New(loggingStore{ls, os.Getenv(envLog)}, os.Getenv(envCache), cache.Options{})
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(os.Getenv(envGo)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("never told to start")
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(helperObjects)*loadsPerObject)
	for _, name := range helperObjects {
		want, err := store.LoadAll(ctx, ls, name, 0, 0)
		if err != nil {
			return err
		}
		for i := range loadsPerObject {
			wg.Go(func() {
				off := int64(i) * int64(len(want)) / loadsPerObject
				got, err := store.LoadAll(ctx, c, name, off, 1000)
				if err == nil && !bytes.Equal(got, want[off:off+1000]) {
					err = fmt.Errorf("%s at %d: other bytes", name, off)
				}
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	// A second round finds every object cached.
	for _, name := range helperObjects {
		if _, err := store.LoadAll(ctx, c, name, 0, 0); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(c.Stats())
}

// TestProcessesFetchOnce runs six processes that load the same three
// objects at once through one cache folder: each object must be fetched
// from the inner store exactly once in all.
func TestProcessesFetchOnce(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("needs flock")
	}
	const procs = 6
	tmp := t.TempDir()
	storeDir, cacheDir := filepath.Join(tmp, "store"), filepath.Join(tmp, "cache")
	logFile, goFile := filepath.Join(tmp, "loads.log"), filepath.Join(tmp, "go")
	ls, err := local.Create(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range helperObjects {
		if err := ls.Save(t.Context(), name, randBytes(uint64(100+i), 256<<10), store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bytes.Buffer, procs)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), envHelper+"=1", envStore+"="+storeDir, envCache+"="+cacheDir,
			envLog+"="+logFile, envGo+"="+goFile)
		outs[i] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var total cache.Stats
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
			continue
		}
		var st cache.Stats
		if err := json.Unmarshal(outs[i].Bytes(), &st); err != nil {
			t.Errorf("helper %d printed %q: %v", i, outs[i], err)
		}
		total.Hits += st.Hits
		total.Misses += st.Misses
		total.Fills += st.Fills
		total.BytesFilled += st.BytesFilled
	}
	logged, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	loads := strings.Fields(string(logged))
	slices.Sort(loads)
	want := slices.Sorted(slices.Values(helperObjects))
	if !slices.Equal(loads, want) {
		t.Errorf("inner Loads across %d processes: %q, want each of %q once", procs, loads, want)
	}
	n := int64(len(helperObjects))
	if total.Fills != n || total.Hits+total.Misses != procs*n*(loadsPerObject+1) || total.Hits < procs*n {
		t.Errorf("summed stats %+v, want %d fills and %d Loads, at least %d of them hits",
			total, n, procs*n*(loadsPerObject+1), procs*n)
	}
	t.Logf("summed stats of %d processes: %+v", procs, total)
}
