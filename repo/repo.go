package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
)

// FormatVersion is the repository layout version written into config.
const FormatVersion = 1

// Object name prefixes.
const (
	configName     = "config"
	packPrefix     = "packs/"
	indexPrefix    = "index/"
	snapshotPrefix = "snapshots/"
)

// Default sizes. Data packs of 16 MiB fit one PUT (no multipart: a
// multipart upload of N parts costs N+2 requests on R2) and are large
// enough that a restore of a node_modules tree needs few GETs.
const (
	DefaultDataPackSize = 16 << 20
	DefaultTreePackSize = 4 << 20
	DefaultFrameSize    = 128 << 10
)

// Config is the repository's config object, written once at init.
type Config struct {
	Version      int          `json:"version"`
	ID           string       `json:"id"`
	Chunker      chunk.Params `json:"chunker"`
	DataPackSize int          `json:"data_pack_size"`
	TreePackSize int          `json:"tree_pack_size"`
	FrameSize    int          `json:"frame_size"`
	// Compression is the zstd level packs are written with: "fastest"
	// (zstd level 1, the default: backups of a node_modules tree are
	// CPU-bound, and it costs about 3% more bytes than level 3),
	// "default" (level 3) or "better". Readers do not depend on it.
	Compression string    `json:"compression"`
	Created     time.Time `json:"created"`
}

// CheckCompression reports whether name is a Config.Compression value
// ("" means the default, fastest).
func CheckCompression(name string) error {
	if _, ok := compressionLevels[name]; !ok && name != "" {
		return fmt.Errorf("unknown compression %q (want fastest, default or better)", name)
	}
	return nil
}

// compressionLevels maps Config.Compression to zstd levels.
var compressionLevels = map[string]zstd.EncoderLevel{
	"fastest": zstd.SpeedFastest,
	"default": zstd.SpeedDefault,
	"better":  zstd.SpeedBetterCompression,
}

func (c Config) validate() error {
	if c.Version > FormatVersion {
		return fmt.Errorf("%w: config says version %d, this sandsnap reads %d", ErrVersion, c.Version, FormatVersion)
	}
	if c.Version < 1 {
		return fmt.Errorf("repo: config: version %d", c.Version)
	}
	if err := c.Chunker.Validate(); err != nil {
		return fmt.Errorf("repo: config: %w", err)
	}
	if err := CheckCompression(c.Compression); err != nil {
		return fmt.Errorf("repo: config: %w", err)
	}
	if c.DataPackSize < 1<<20 || c.DataPackSize > 1<<30 || c.TreePackSize < 64<<10 || c.TreePackSize > 1<<30 ||
		c.FrameSize < 4<<10 || c.FrameSize > 16<<20 {
		return fmt.Errorf("repo: config: pack sizes out of range (data %d, tree %d, frame %d)", c.DataPackSize, c.TreePackSize, c.FrameSize)
	}
	return nil
}

// Options configure an open Repository.
type Options struct {
	// Logf receives warnings and debug lines; nil discards them.
	Logf func(format string, args ...any)
	// Workers is the number of goroutines that read, chunk, hash and
	// compress (default GOMAXPROCS).
	Workers int
	// Uploads is the number of concurrent pack uploads and range
	// downloads (default 4).
	Uploads int
	// Now is this host's clock (default time.Now). It stamps the config
	// and the informational start time in leases; snapshot created and
	// expires stamps, expiry checks and lease ages use the store's clock
	// (see storeNow).
	Now func() time.Time
	// LeaseTTL is how long a writer's lease lives without renewal before
	// gc takes the writer for dead (default DefaultLeaseTTL). Writers
	// renew every third of it.
	LeaseTTL time.Duration
	// Host names the writer in snapshots (default os.Hostname).
	Host string
	// CacheDir is this host's cache folder; the files cache of every
	// directory backed up or restored lives under CacheDir/files. Empty
	// means no files cache: backups then compare stat with the parent
	// snapshot's entries, and restores in place read files to compare.
	CacheDir string
}

func (o *Options) fill() {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Uploads <= 0 {
		o.Uploads = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
}

// Repository is an open repository. Its methods are safe for concurrent
// use.
type Repository struct {
	st   store.Store
	cfg  Config
	opts Options
	enc  *zstd.Encoder // shared; used only through EncodeAll
	dec  *zstd.Decoder // shared; used only through DecodeAll
	idx  *index
	tc   *treeCache
	// packBufs holds buffers of uploaded data packs for reuse, so a
	// backup's memory stays flat: each pack is 16 MiB, and leaving them to
	// the GC lets the heap grow to twice what is live.
	packBufs chan []byte

	// readHook, when set by a test, wraps the reader of each file a
	// backup reads: the one seam for injecting read errors and changes
	// while a file is read, which are hard to cause for real as root.
	readHook func(path string, r io.Reader) io.Reader
	// beforeCommit, when set by a test, runs between a backup's walk and
	// its commit: the seam for interleaving gc runs with a writer.
	beforeCommit func()
}

// InitOptions choose a new repository's parameters; zero fields take the
// defaults.
type InitOptions struct {
	Chunker      *chunk.Params
	DataPackSize int
	TreePackSize int
	FrameSize    int
	Compression  string // "fastest" (default), "default" or "better"
}

// Init creates a repository in st and opens it. It fails with an error
// wrapping store.ErrExists if st already holds one.
func Init(ctx context.Context, st store.Store, init InitOptions, opts Options) (*Repository, error) {
	opts.fill()
	cfg := Config{
		Version:      FormatVersion,
		DataPackSize: orDefault(init.DataPackSize, DefaultDataPackSize),
		TreePackSize: orDefault(init.TreePackSize, DefaultTreePackSize),
		FrameSize:    orDefault(init.FrameSize, DefaultFrameSize),
		Compression:  init.Compression,
		Created:      opts.Now().UTC(),
	}
	if init.Chunker != nil {
		cfg.Chunker = *init.Chunker
	} else {
		p, err := chunk.NewParams()
		if err != nil {
			return nil, err
		}
		cfg.Chunker = p
	}
	var rid [16]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return nil, fmt.Errorf("repo: init: %w", err)
	}
	cfg.ID = hex.EncodeToString(rid[:])
	if cfg.Compression == "" {
		cfg.Compression = "fastest"
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := st.Save(ctx, configName, data, store.SaveOptions{IfNoneMatch: true}); err != nil {
		return nil, fmt.Errorf("repo: init: write %s: %w", configName, err)
	}
	return newRepository(ctx, st, cfg, opts)
}

// Open opens the repository in st, reading its config and index. It fails
// with ErrNoRepository when st holds no config object, ErrBadConfig when
// the config object cannot be read as one (garbage, truncated, values out
// of range), and ErrVersion when a newer sandsnap wrote it.
func Open(ctx context.Context, st store.Store, opts Options) (*Repository, error) {
	opts.fill()
	data, err := store.LoadAll(ctx, st, configName, 0, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w (no %s object)", ErrNoRepository, configName)
	}
	if err != nil {
		return nil, fmt.Errorf("repo: read %s: %w", configName, err)
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%w: object %s is not a sandsnap config (%d bytes): %v", ErrBadConfig, configName, len(data), err)
	}
	if err := cfg.validate(); err != nil {
		if errors.Is(err, ErrVersion) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: object %s: %v", ErrBadConfig, configName, err)
	}
	return newRepository(ctx, st, cfg, opts)
}

// OpenOrInit opens the repository in st, creating it first when there is
// none (a concurrent creator wins cleanly: its config is used). A store
// that holds repository objects (packs, index deltas, snapshots) but no
// config is refused with ErrConfigMissing: a new config would pick a new
// chunker polynomial, and nothing backed up afterwards would deduplicate
// against what is there.
func OpenOrInit(ctx context.Context, st store.Store, opts Options) (*Repository, error) {
	r, err := Open(ctx, st, opts)
	if !errors.Is(err, ErrNoRepository) {
		return r, err
	}
	if err := checkNoObjects(ctx, st); err != nil {
		// A creator that raced with us writes its config before any
		// other object: look again before refusing.
		if r, oerr := Open(ctx, st, opts); !errors.Is(oerr, ErrNoRepository) {
			return r, oerr
		}
		return nil, err
	}
	r, err = Init(ctx, st, InitOptions{}, opts)
	if errors.Is(err, store.ErrExists) {
		return Open(ctx, st, opts)
	}
	return r, err
}

// errFound stops a listing at its first object.
var errFound = errors.New("repo: found an object")

// checkNoObjects fails with ErrConfigMissing, naming one object, when st
// holds anything under packs/, index/ or snapshots/. Each prefix costs one
// LIST request, stopped at its first object.
func checkNoObjects(ctx context.Context, st store.Store) error {
	for _, prefix := range []string{snapshotPrefix, indexPrefix, packPrefix} {
		var first string
		err := st.List(ctx, prefix, func(fi store.Info) error {
			first = fi.Name
			return errFound
		})
		switch {
		case errors.Is(err, errFound):
			return fmt.Errorf("%w: the store holds %s but no %s object; refusing to create a new one, which would end deduplication with what is there (restore the %s object, or use a new location)",
				ErrConfigMissing, first, configName, configName)
		case err != nil:
			return fmt.Errorf("repo: list %s: %w", prefix, err)
		}
	}
	return nil
}

func newRepository(ctx context.Context, st store.Store, cfg Config, opts Options) (*Repository, error) {
	level, ok := compressionLevels[cfg.Compression]
	if !ok {
		level = zstd.SpeedFastest // "" means the default
	}
	enc, err := pack.NewEncoderLevel(level)
	if err != nil {
		return nil, err
	}
	dec, err := pack.NewDecoder()
	if err != nil {
		return nil, err
	}
	r := &Repository{st: st, cfg: cfg, opts: opts, enc: enc, dec: dec, idx: newIndex(),
		packBufs: make(chan []byte, opts.Workers+opts.Uploads+1)}
	r.tc = newTreeCache(r)
	// gc's state is read before the index, so that a writer can tell
	// whether gc deleted packs since (refreshGCView).
	if err := r.loadGCView(ctx); err != nil {
		return nil, err
	}
	if err := r.idx.load(ctx, st, opts.Logf); err != nil {
		return nil, err
	}
	return r, nil
}

// Config returns the repository's config.
func (r *Repository) Config() Config { return r.cfg }

// Store returns the store the repository lives in.
func (r *Repository) Store() store.Store { return r.st }

// VerifyObject checks an immutable object's bytes against its name: packs
// and index deltas are named by the BLAKE3 of their bytes. Other names are
// not checked. A host cache uses it before it keeps a fetched object.
func VerifyObject(name string, data []byte) error {
	return VerifyObjectReader(name, bytes.NewReader(data))
}

// VerifyObjectReader is VerifyObject over a stream, so that a 16 MiB pack
// is checked without being held in memory.
func VerifyObjectReader(name string, r io.Reader) error {
	var hex string
	switch {
	case strings.HasPrefix(name, packPrefix):
		hex = name[strings.LastIndexByte(name, '/')+1:]
	case strings.HasPrefix(name, indexPrefix):
		hex = strings.TrimPrefix(name, indexPrefix)
	default:
		return nil
	}
	id, err := chunk.ParseID(hex)
	if err != nil {
		return fmt.Errorf("repo: object %s: %w", name, err)
	}
	got, err := chunk.HashReader(r)
	if err != nil {
		return fmt.Errorf("repo: object %s: %w", name, err)
	}
	if got != id {
		return fmt.Errorf("repo: object %s: %w: content does not match its name", name, pack.ErrCorrupt)
	}
	return nil
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func packName(id chunk.ID) string {
	s := id.String()
	return packPrefix + s[:2] + "/" + s
}
