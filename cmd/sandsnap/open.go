package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/counting"
	"github.com/sandsnap/sandsnap/store/location"
)

// openMode says how a command reaches its repository.
type openMode int

const (
	openExisting openMode = iota // the repository must exist
	openOrInit                   // create the location and repository if needed
	initNew                      // create the repository; fail if one exists
)

// session is an open repository whose store requests are counted.
type session struct {
	url   string
	r     *repo.Repository
	count *counting.Store
}

// url returns --repo, or $SANDSNAP_REPO when the flag is not given.
func (a *app) url() (string, error) {
	u := a.repoURL
	if u == "" {
		u = os.Getenv("SANDSNAP_REPO")
	}
	if u == "" {
		return "", usageErrorf("no repository: give --repo or set SANDSNAP_REPO")
	}
	return u, nil
}

func (a *app) open(ctx context.Context, mode openMode) (*session, error) {
	u, err := a.url()
	if err != nil {
		return nil, err
	}
	lopts := location.Options{Endpoint: a.endpoint}
	var st store.Store
	if mode == openExisting {
		st, err = location.Open(ctx, u, lopts)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no sandsnap repository at %s", u)
		}
	} else {
		st, err = location.Create(ctx, u, lopts)
	}
	if err != nil {
		return nil, err
	}
	cs := counting.New(st)
	var r *repo.Repository
	switch mode {
	case openExisting:
		r, err = repo.Open(ctx, cs, repo.Options{})
	case openOrInit:
		r, err = repo.OpenOrInit(ctx, cs, repo.Options{})
	case initNew:
		r, err = repo.Init(ctx, cs, repo.InitOptions{}, repo.Options{})
	}
	switch {
	case errors.Is(err, repo.ErrNoRepository):
		return nil, fmt.Errorf("no sandsnap repository at %s", u)
	case mode == initNew && errors.Is(err, store.ErrExists):
		return nil, fmt.Errorf("a sandsnap repository already exists at %s", u)
	case err != nil:
		return nil, err
	}
	return &session{url: u, r: r, count: cs}, nil
}

// requests returns the store requests made so far, in the shape of
// repo.Stats.Requests.
func (s *session) requests() map[string]int64 {
	c := s.count.Stats()
	return map[string]int64{
		"put":        c.Puts,
		"get":        c.Gets,
		"head":       c.Heads,
		"list":       c.Lists,
		"delete":     c.Deletes,
		"bytes_up":   c.BytesUp,
		"bytes_down": c.BytesDown,
	}
}
