package benchrun

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// npmPackage is the package.json of the --npm workload: a handful of
// popular packages that pull in a typical node_modules tree.
const npmPackage = `{
  "name": "snapbench-npm",
  "version": "1.0.0",
  "private": true,
  "dependencies": {
    "react": "18.3.1",
    "react-dom": "18.3.1",
    "lodash": "4.17.21",
    "express": "4.21.2",
    "axios": "1.7.9",
    "typescript": "5.7.2",
    "webpack": "5.97.1",
    "eslint": "9.17.0"
  }
}
`

// npmTimeout bounds npm install; without a network it fails or hangs.
const npmTimeout = 5 * time.Minute

// npmInstall makes dir a node project and runs npm install in it.
func npmInstall(ctx context.Context, dir string) error {
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("npm not found: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(npmPackage), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm install: %w: %s", err, lastLine(string(out)))
	}
	return nil
}
