package benchrun

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandsnap/sandsnap/store/counting"
)

// Metrics are what the runner measured for one scenario.
type Metrics struct {
	WallSeconds float64 `json:"wall_seconds"`
	UserSeconds float64 `json:"user_seconds"`
	SysSeconds  float64 `json:"sys_seconds"`
	// PeakRSS is VmHWM after a reset before the scenario, in bytes; 0
	// when the kernel does not allow the reset.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// Files and Bytes are the logical work: files and bytes backed up or
	// restored.
	Files       int64   `json:"files"`
	Bytes       int64   `json:"bytes"`
	FilesPerSec float64 `json:"files_per_sec"`
	MBPerSec    float64 `json:"mb_per_sec"`
	// DiskReadBytes is the read_bytes delta of /proc/self/io (reads that
	// reached the block layer); ReadChars the rchar delta (every byte
	// returned by read syscalls, page-cache hits included).
	DiskReadBytes int64          `json:"disk_read_bytes"`
	ReadChars     int64          `json:"rchar_bytes"`
	Store         counting.Stats `json:"store"`
	// RepoBytes and RepoObjects describe the repository after the
	// scenario; Dedup is the logical bytes of every snapshot so far over
	// RepoBytes.
	RepoBytes   int64   `json:"repo_bytes"`
	RepoObjects int64   `json:"repo_objects"`
	Dedup       float64 `json:"dedup"`
}

// CPUSeconds is user plus system CPU time.
func (m Metrics) CPUSeconds() float64 { return m.UserSeconds + m.SysSeconds }

// work is the logical size of what a measured function did.
type work struct{ files, bytes int64 }

// probe is a reading of the process's counters.
type probe struct {
	at          time.Time
	user, sys   time.Duration
	rchar, read int64
	store       counting.Stats
}

// runner measures functions run in this process.
type runner struct {
	st *counting.Store
}

// measure runs fn and returns its metrics (without the repository's size,
// which the caller adds).
func (r runner) measure(ctx context.Context, fn func(ctx context.Context) (work, error)) (Metrics, error) {
	// Flush what earlier steps wrote, so that their writeback is not
	// charged to this one, and return the previous scenario's garbage to
	// the OS so that it does not count as this one's peak.
	syscall.Sync()
	runtime.GC()
	debug.FreeOSMemory()
	hwmOK := resetPeakRSS() == nil
	before := r.read()
	w, err := fn(ctx)
	after := r.read()
	if err != nil {
		return Metrics{}, err
	}
	m := Metrics{
		WallSeconds:   after.at.Sub(before.at).Seconds(),
		UserSeconds:   (after.user - before.user).Seconds(),
		SysSeconds:    (after.sys - before.sys).Seconds(),
		Files:         w.files,
		Bytes:         w.bytes,
		DiskReadBytes: after.read - before.read,
		ReadChars:     after.rchar - before.rchar,
		Store:         after.store.Sub(before.store),
	}
	if hwmOK {
		m.PeakRSS = peakRSS()
	}
	m.FilesPerSec, m.MBPerSec = rates(w, m.WallSeconds)
	return m, nil
}

func (r runner) read() probe {
	p := probe{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		p.user = tvDuration(ru.Utime)
		p.sys = tvDuration(ru.Stime)
	}
	p.rchar, p.read = procIO()
	if r.st != nil {
		p.store = r.st.Stats()
	}
	return p
}

func rates(w work, wall float64) (filesPerSec, mbPerSec float64) {
	if wall <= 0 {
		return 0, 0
	}
	return float64(w.files) / wall, float64(w.bytes) / 1e6 / wall
}

func tvDuration(tv syscall.Timeval) time.Duration {
	return time.Duration(tv.Sec)*time.Second + time.Duration(tv.Usec)*time.Microsecond
}

// resetPeakRSS sets VmHWM to the current RSS (proc(5), clear_refs "5").
func resetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS reads VmHWM of this process in bytes (0 if unknown).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return procField(b, "VmHWM:") * 1024
}

// procIO returns rchar and read_bytes of this process (0 if unknown).
func procIO() (rchar, readBytes int64) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	return procField(b, "rchar:"), procField(b, "read_bytes:")
}

// procField returns the first number after key in a /proc file.
func procField(b []byte, key string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0
			}
			n, _ := strconv.ParseInt(f[0], 10, 64)
			return n
		}
	}
	return 0
}
