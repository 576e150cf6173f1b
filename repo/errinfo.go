package repo

// ObjectError is an error about one object of a repository, named as the
// store names it: "config", "packs/ab/<id>", "index/<id>",
// "snapshots/<id>". It is to repository objects what fs.PathError is to
// files: a program finds the object with errors.As instead of parsing the
// message (the CLI's JSON errors carry it as "object"), and errors.Is still
// reaches the cause (pack.ErrCorrupt, store.ErrNotFound, ErrExpired ...).
//
// Functions that fail on a particular object may return one, wrapped or
// not; callers must not assume that every object error is one.
type ObjectError struct {
	// Op is what was being done ("read", "decode", "verify"), or "".
	Op     string
	Object string
	Err    error
}

// Error reads "op object: cause", or "object: cause" without an Op.
func (e *ObjectError) Error() string {
	if e.Op == "" {
		return e.Object + ": " + e.Err.Error()
	}
	return e.Op + " " + e.Object + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *ObjectError) Unwrap() error { return e.Err }
