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
