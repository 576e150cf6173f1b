package main

import (
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/sandsnap/sandsnap/internal/benchrun"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args       []string
		wantPreset string
		wantErr    error
	}{
		{nil, benchrun.PresetQuick, nil},
		{[]string{"--quick"}, benchrun.PresetQuick, nil},
		{[]string{"--full", "--report", "/tmp/r"}, benchrun.PresetFull, nil},
		{[]string{"--scale", "0.3"}, benchrun.PresetCustom, nil},
		{[]string{"--workload", "db"}, benchrun.PresetCustom, nil},
		{[]string{"--quick", "--files", "500"}, benchrun.PresetQuick, nil},
		{[]string{"--full", "--scale", "2"}, benchrun.PresetFull, nil},
		{[]string{"--repo", "s3://b/p", "--json"}, benchrun.PresetQuick, nil},
		{[]string{"--full", "--quick"}, "", benchrun.ErrConfig},
		{[]string{"extra"}, "", benchrun.ErrConfig},
		{[]string{"--help"}, "", flag.ErrHelp},
	}
	for _, tt := range tests {
		cfg, _, err := parseFlags(tt.args, io.Discard)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%q: err = %v; want %v", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if cfg.Preset != tt.wantPreset {
			t.Errorf("%q: preset %q; want %q", tt.args, cfg.Preset, tt.wantPreset)
		}
	}
}
