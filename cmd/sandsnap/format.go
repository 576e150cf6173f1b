package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/sandsnap/sandsnap/repo"
)

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// formatBytes prints n in IEC units ("1.5 MiB").
func formatBytes[T int64 | uint64](n T) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= unit
		if v < unit {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return fmt.Sprintf("%.1f PiB", v/unit)
}

// formatTime prints t in UTC to the second.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// formatExpires prints a handle's optional expiry; whether it has passed
// was judged by the store's clock (repo.Handle.Expired).
func formatExpires(h repo.Handle) string {
	switch {
	case h.Expires == nil:
		return "never"
	case h.Expired:
		return formatTime(*h.Expires) + " (expired)"
	}
	return formatTime(*h.Expires)
}

// listedStats are the stats a snapshot object records, so the ones a
// listing knows. The rest of repo.Stats (files read, packs uploaded,
// seconds, requests) is known only to the process that made the backup;
// a listing leaves it out rather than print zeros that look measured.
type listedStats struct {
	Files    uint64 `json:"files"`
	Dirs     uint64 `json:"dirs"`
	Symlinks uint64 `json:"symlinks"`
	Other    uint64 `json:"other"`
	Bytes    uint64 `json:"bytes"`
	BlobsNew uint64 `json:"blobs_new"`
	BytesNew uint64 `json:"bytes_new"`
}

// listedHandle is a handle as ls --json and show --json print it: still
// a handle file (restore reads its "id"), with only the known stats.
type listedHandle struct {
	repo.Handle
	Stats listedStats `json:"stats"`
}

func listed(h repo.Handle) listedHandle {
	st := h.Stats
	return listedHandle{Handle: h, Stats: listedStats{
		Files: st.Files, Dirs: st.Dirs, Symlinks: st.Symlinks, Other: st.Other,
		Bytes: st.Bytes, BlobsNew: st.BlobsNew, BytesNew: st.BytesNew,
	}}
}

// listedAll is listed over a listing; never nil, so it prints as [].
func listedAll(hs []repo.Handle) []listedHandle {
	out := make([]listedHandle, len(hs))
	for i, h := range hs {
		out[i] = listed(h)
	}
	return out
}
