package benchrun

import (
	"context"
	"fmt"
	"time"
)

// Run builds the workload, runs every scenario and baseline, and returns
// the report. logf receives progress lines (nil discards them). Temporary
// data is removed before Run returns unless cfg.Keep.
func Run(ctx context.Context, cfg Config, logf func(format string, args ...any)) (*Report, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cfg, err := cfg.Defaults()
	if err != nil {
		return nil, err
	}
	rep := &Report{Date: time.Now().UTC(), Machine: thisMachine(), Config: cfg, Notes: methodNotes()}
	logf("preparing the workload (%s)", cfg.Workload)
	e, cleanup, err := newEnv(ctx, cfg, logf)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	rep.Workload, rep.Store = e.wl, storeName(cfg)
	rep.Notes = append(rep.Notes, e.buildSandsnap(ctx))
	logf("workload: %d files, %s", e.wl.Files, fmtBytes(e.wl.Bytes))
	if err := e.runAll(ctx, rep); err != nil {
		return nil, err
	}
	rep.Baselines = e.bases.list
	rep.Notes = append(rep.Notes, e.bases.notes...)
	rep.Ratios = computeRatios(rep.Scenarios, rep.Baselines)
	rep.Targets = computeTargets(rep.Scenarios, rep.Ratios, cfg.Forks)
	return rep, nil
}

// runAll runs the baselines and scenarios in their order: the unmutated
// phase, the mutation, the mutated phase.
func (e *env) runAll(ctx context.Context, rep *Report) error {
	e.runBaselinesBefore(ctx)
	if err := e.runList(ctx, rep, beforeMutation()); err != nil {
		return err
	}
	logf := e.logf
	logf("mutation: %s", e.cfg.mutation())
	if err := e.mutate(ctx); err != nil {
		return err
	}
	ms := e.mutated
	rep.Mutation = Mutation{Kind: e.cfg.mutation(), Changed: len(ms.Changed), Added: len(ms.Added),
		Deleted: len(ms.Deleted), Touched: len(ms.Touched), DirtyBytes: ms.DirtyBytes}
	e.runBaselinesAfter(ctx)
	return e.runList(ctx, rep, afterMutation(e.cfg))
}

func (e *env) runList(ctx context.Context, rep *Report, list []scenario) error {
	for _, s := range list {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := e.runScenario(ctx, s)
		if err != nil {
			return err
		}
		rep.Scenarios = append(rep.Scenarios, res)
	}
	return nil
}

func storeName(cfg Config) string {
	if cfg.Repo == "" {
		return "local (temporary folder)"
	}
	return fmt.Sprintf("%s (fresh sub-location)", cfg.Repo)
}
