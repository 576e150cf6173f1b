package benchrun

import (
	"errors"
	"fmt"

	"github.com/sandsnap/sandsnap/bench"
)

// ErrConfig marks a configuration that cannot run.
var ErrConfig = errors.New("benchrun: invalid configuration")

// Preset names a sizing of the run.
const (
	PresetQuick  = "quick"
	PresetFull   = "full"
	PresetCustom = "custom"
)

// Config is everything a run needs. The zero value plus Defaults is a
// quick run against a temporary local repository.
type Config struct {
	Preset   string  `json:"preset"`
	Workload string  `json:"workload"`
	Scale    float64 `json:"scale"`
	Files    int     `json:"files,omitempty"`
	Seed     uint64  `json:"seed"`
	// Dir, if set, is measured instead of a generated workload. It is
	// only read: mutations are made on a cp -a copy of it.
	Dir string `json:"dir,omitempty"`
	// NPM builds the node workload with a real `npm install`.
	NPM bool `json:"npm,omitempty"`
	// Repo is a repository location (store/location); empty means a
	// local store in the work directory. A fresh sub-location
	// snapbench-<stamp> is used under it and removed afterwards.
	Repo string `json:"repo,omitempty"`
	// Restic is the restic binary: "" finds it on PATH, "off" skips it.
	Restic string `json:"restic,omitempty"`
	// NoCache runs without a host cache folder: no files cache (backups
	// compare stat with the parent, restores in place read files to
	// compare) and no fork via host cache.
	NoCache bool `json:"no_cache,omitempty"`
	// Forks is the N of the fork-N scenarios.
	Forks int `json:"forks"`
	// WorkDir holds the temporary directory of the run (default
	// os.TempDir()); Keep leaves it (and a remote repository) in place.
	WorkDir string `json:"work_dir,omitempty"`
	Keep    bool   `json:"keep,omitempty"`
}

// Presets: quick finishes in under a minute on two cores (about 3,000
// files and 35 MB); full is at least 30,000 files and 300 MB.
const (
	quickScale = 0.1
	fullScale  = 1.1
	quickForks = 4
	fullForks  = 8
)

// Defaults fills the fields the preset decides and checks the rest.
func (c Config) Defaults() (Config, error) {
	if c.Preset == "" {
		c.Preset = PresetQuick
	}
	if c.Workload == "" {
		c.Workload = bench.KindWorkspace
	}
	switch c.Preset {
	case PresetQuick, PresetCustom:
		c.Scale = orFloat(c.Scale, quickScale)
		c.Forks = orInt(c.Forks, quickForks)
	case PresetFull:
		c.Scale = orFloat(c.Scale, fullScale)
		c.Forks = orInt(c.Forks, fullForks)
	default:
		return c, fmt.Errorf("%w: preset %q", ErrConfig, c.Preset)
	}
	switch c.Workload {
	case bench.KindNode, bench.KindRepo, bench.KindWorkspace, bench.KindDB, bench.KindBigfile:
	default:
		return c, fmt.Errorf("%w: workload %q (want node, repo, workspace, db or bigfile)", ErrConfig, c.Workload)
	}
	if c.Scale < 0 || c.Files < 0 || c.Forks < 1 {
		return c, fmt.Errorf("%w: scale, files and forks must be positive", ErrConfig)
	}
	return c, nil
}

// mutation is the bench.Mutate kind that fits the workload.
func (c Config) mutation() string {
	switch {
	case c.Dir != "" || c.NPM:
		return bench.MutateDev
	case c.Workload == bench.KindDB:
		return bench.MutateDB
	case c.Workload == bench.KindBigfile:
		return bench.MutateBigfile
	}
	return bench.MutateDev
}

func orFloat(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}

func orInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}
