package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sandsnap/sandsnap/store"
)

// The tests in this file need no S3 server: they check what the store
// sends and how it reads answers, against handlers that play single
// requests, and the error translation table.

// newFake returns a store whose endpoint is h.
func newFake(t *testing.T, h http.HandlerFunc, edit func(*Config)) *Store {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{
		Bucket:          "bkt",
		Prefix:          "repo",
		Endpoint:        srv.URL,
		AccessKeyID:     "key",
		SecretAccessKey: "secret",
		PathStyle:       true,
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" for success
		prefix  string
	}{
		{"minimal", Config{Bucket: "b"}, "", ""},
		{"prefix", Config{Bucket: "b", Prefix: "team/repo"}, "", "team/repo/"},
		{"prefix slashes", Config{Bucket: "b", Prefix: "/team/repo/"}, "", "team/repo/"},
		{"no bucket", Config{}, "no bucket", ""},
		{"bucket with slash", Config{Bucket: "b/c"}, "invalid bucket", ""},
		{"dotdot prefix", Config{Bucket: "b", Prefix: "a/../b"}, "invalid prefix", ""},
		{"key without secret", Config{Bucket: "b", AccessKeyID: "k"}, "both", ""},
		{"secret without key", Config{Bucket: "b", SecretAccessKey: "s"}, "both", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(t.Context(), tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.prefix != tt.prefix {
				t.Errorf("prefix = %q, want %q", s.prefix, tt.prefix)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"config", true},
		{"packs/ab/0123", true},
		{"a.b/..c/d..", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{".", false},
		{"a/./b", false},
		{"a/..", false},
		{"a\x00b", false},
	}
	for _, tt := range tests {
		err := validName(tt.name)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, store.ErrInvalidName)) {
			t.Errorf("validName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// apiErr builds the error the SDK returns for an HTTP error response.
func apiErr(status int, code string) error {
	resp := &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: code, Message: "message from the server"},
	}
	return &smithy.OperationError{
		ServiceID:     "S3",
		OperationName: "Op",
		Err:           &awshttp.ResponseError{ResponseError: resp, RequestID: "req"},
	}
}

func TestTranslate(t *testing.T) {
	s := &Store{bucket: "bkt", endpoint: "http://127.0.0.1:1"}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name    string
		err     error
		o       opSave
		want    error  // nil: none of the store sentinels
		message string // a word the message must hold
	}{
		{"no such key", apiErr(404, "NoSuchKey"), opSave{}, store.ErrNotFound, `"obj"`},
		{"head 404", apiErr(404, "NotFound"), opSave{}, store.ErrNotFound, "not found"},
		{"no such bucket", apiErr(404, "NoSuchBucket"), opSave{}, store.ErrPermanent, `bucket "bkt" does not exist`},
		{"access denied", apiErr(403, "AccessDenied"), opSave{}, store.ErrPermanent, "check credentials"},
		{"bad signature", apiErr(403, "SignatureDoesNotMatch"), opSave{}, store.ErrPermanent, "SignatureDoesNotMatch"},
		{"head 403", apiErr(403, ""), opSave{}, store.ErrPermanent, "check credentials"},
		{"expired token", apiErr(400, "ExpiredToken"), opSave{}, store.ErrPermanent, "check credentials"},
		{"versitygw unknown key", apiErr(404, "XAdminUserNotFound"), opSave{}, store.ErrPermanent, "check credentials"},
		{"create exists", apiErr(412, "PreconditionFailed"), opSave{create: true}, store.ErrExists, "exists"},
		{"create conflict", apiErr(409, "ConditionalRequestConflict"), opSave{create: true}, store.ErrExists, "exists"},
		{"if-match stale", apiErr(412, "PreconditionFailed"), opSave{ifMatch: true}, store.ErrPrecondition, "precondition"},
		{"if-match conflict", apiErr(409, "ConditionalRequestConflict"), opSave{ifMatch: true}, store.ErrPrecondition, "precondition"},
		{"range", apiErr(416, "InvalidRange"), opSave{}, store.ErrInvalidRange, "range"},
		{"not implemented", apiErr(501, "NotImplemented"), opSave{}, store.ErrPermanent, "does not implement"},
		{"server error", apiErr(500, "InternalError"), opSave{}, nil, "InternalError"},
		{"slow down", apiErr(503, "SlowDown"), opSave{}, nil, "SlowDown"},
		{"other conflict", apiErr(409, "ObjectParentIsFile"), opSave{}, nil, "ObjectParentIsFile"},
		{"refused", fmt.Errorf("op: %w", dial), opSave{}, syscall.ECONNREFUSED, "cannot connect to http://127.0.0.1:1"},
		{"short body", fmt.Errorf("op: %w", io.ErrUnexpectedEOF), opSave{}, io.ErrUnexpectedEOF, "unexpected EOF"},
		{"cancelled", fmt.Errorf("op: %w", context.Canceled), opSave{}, context.Canceled, "canceled"},
		{"deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), opSave{}, context.DeadlineExceeded, "deadline"},
	}
	sentinels := []error{store.ErrNotFound, store.ErrExists, store.ErrPrecondition, store.ErrInvalidRange, store.ErrPermanent}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.translate("save", "obj", tt.err, tt.o)
			if tt.want != nil && !errors.Is(got, tt.want) {
				t.Errorf("translate = %v, want %v", got, tt.want)
			}
			for _, sentinel := range sentinels {
				if sentinel != tt.want && errors.Is(got, sentinel) {
					t.Errorf("translate = %v, which is also %v", got, sentinel)
				}
			}
			if !strings.Contains(got.Error(), tt.message) || strings.Contains(got.Error(), "\n") {
				t.Errorf("message %q does not hold %q on one line", got, tt.message)
			}
		})
	}
}

// countingTransport counts the requests that reach the network.
type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// closedPort returns a local address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUnreachableEndpoint(t *testing.T) {
	ct := &countingTransport{}
	endpoint := "http://" + closedPort(t)
	var logged atomic.Int64
	s, err := New(t.Context(), Config{
		Bucket: "bkt", Endpoint: endpoint, PathStyle: true,
		AccessKeyID: "key", SecretAccessKey: "secret",
		HTTPClient: &http.Client{Transport: ct},
		Logf: func(format string, args ...any) {
			logged.Add(1)
			t.Logf(format, args...)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The bound only keeps a broken retry loop from hanging the test run;
	// the store must give up on its own, long before.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = s.Save(ctx, "config", []byte("x"), store.SaveOptions{})
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Save to a closed port: error = %v, want one before the deadline", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "cannot connect to "+endpoint) {
		t.Errorf("error = %v, want connection refused, naming the endpoint", err)
	}
	if errors.Is(err, store.ErrPermanent) {
		t.Errorf("error = %v: a refused connection may heal, it must not be permanent", err)
	}
	if n := ct.n.Load(); n < 1 || n > sdkMaxAttempts {
		t.Errorf("%d attempts, want 1 to %d", n, sdkMaxAttempts)
	}
	if n, l := ct.n.Load(), logged.Load(); l != n-1 {
		t.Errorf("%d attempts but %d retries logged, want one line per retry", n, l)
	}
}

func TestRequestHeaders(t *testing.T) {
	var mu sync.Mutex
	var got []string // method, path and the headers that matter, per request
	s := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s len=%d body=%q", r.Method, r.URL.Path, r.ContentLength, body)
		for _, h := range []string{"Range", "If-None-Match", "If-Match", "Content-Md5", "Content-Encoding", "X-Amz-Trailer", "X-Amz-Sdk-Checksum-Algorithm"} {
			if v := r.Header.Get(h); v != "" {
				fmt.Fprintf(&b, " %s=%s", h, v)
			}
		}
		for h := range r.Header {
			if strings.HasPrefix(strings.ToLower(h), "x-amz-checksum") {
				fmt.Fprintf(&b, " %s", h)
			}
		}
		mu.Lock()
		got = append(got, b.String())
		mu.Unlock()
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Range", "bytes 5-14/100")
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "0123456789")
			return
		}
		w.Header().Set("ETag", `"e"`)
	}, nil)
	ctx := t.Context()
	steps := []struct {
		run  func() error
		want string
	}{
		{func() error { return s.Save(ctx, "a/b", []byte("data"), store.SaveOptions{}) },
			`PUT /bkt/repo/a/b len=4 body="data"`},
		{func() error { return s.Save(ctx, "c", []byte("xy"), store.SaveOptions{IfNoneMatch: true}) },
			`PUT /bkt/repo/c len=2 body="xy" If-None-Match=*`},
		{func() error { return s.Save(ctx, "c", nil, store.SaveOptions{IfMatch: `"e1"`}) },
			`PUT /bkt/repo/c len=0 body="" If-Match="e1"`},
		{func() error { _, err := store.LoadAll(ctx, s, "c", 5, 10); return err },
			`GET /bkt/repo/c len=0 body="" Range=bytes=5-14`},
	}
	for i, step := range steps {
		if err := step.run(); err != nil {
			t.Errorf("step %d: %v", i, err)
		}
		mu.Lock()
		if len(got) != i+1 || got[i] != step.want {
			t.Errorf("step %d sent %q, want %q", i, got[i:], step.want)
		}
		mu.Unlock()
	}
}

func TestShortBody(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"range cut short", func(w http.ResponseWriter, r *http.Request) {
			// 5 bytes where 10 were asked, though the object has 100.
			w.Header().Set("Content-Range", "bytes 5-9/100")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "01234")
		}, io.ErrUnexpectedEOF},
		{"connection dropped", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 5-14/100")
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "01234")
			// The handler returns early: the server closes the
			// connection after 5 of the 10 promised bytes.
		}, io.ErrUnexpectedEOF},
		{"range past the end", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 5-7/8")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "567")
		}, store.ErrInvalidRange},
		{"longer than asked", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 5-14/100")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "0123456789ABC")
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t, tt.handler, nil)
			_, err := store.LoadAll(t.Context(), s, "obj", 5, 10)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Load error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRemoveManyBatches(t *testing.T) {
	var mu sync.Mutex
	var batches []int // keys per DeleteObjects request
	s := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !r.URL.Query().Has("delete") {
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		batches = append(batches, strings.Count(string(body), "<Key>"))
		mu.Unlock()
		// One key fails, one is reported missing (which is fine).
		io.WriteString(w, `<DeleteResult>
			<Error><Key>repo/n0007</Key><Code>AccessDenied</Code><Message>no</Message></Error>
			<Error><Key>repo/n0008</Key><Code>NoSuchKey</Code><Message>gone</Message></Error>
			</DeleteResult>`)
	}, nil)
	names := make([]string, 2500)
	for i := range names {
		names[i] = fmt.Sprintf("n%04d", i)
	}
	err := s.RemoveMany(t.Context(), names)
	if err == nil || !strings.Contains(err.Error(), `"n0007"`) || strings.Contains(err.Error(), "n0008") {
		t.Errorf("RemoveMany error = %v, want one naming n0007 only", err)
	}
	if len(batches) != 1 || batches[0] != 1000 {
		t.Errorf("batches = %v, want [1000] (stop at the first failing batch)", batches)
	}

	batches = nil
	s = newFake(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		batches = append(batches, strings.Count(string(body), "<Key>"))
		mu.Unlock()
		io.WriteString(w, `<DeleteResult></DeleteResult>`)
	}, nil)
	if err := s.RemoveMany(t.Context(), names); err != nil {
		t.Fatal(err)
	}
	if want := []int{1000, 1000, 500}; fmt.Sprint(batches) != fmt.Sprint(want) {
		t.Errorf("batches = %v, want %v", batches, want)
	}
}

// TestNewKeepsNoContext cancels New's context before using the store: a
// store that kept it would fail every request.
func TestNewKeepsNoContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"e"`)
		w.Header().Set("Content-Length", "3")
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	s, err := New(ctx, Config{Bucket: "b", Endpoint: srv.URL, PathStyle: true, AccessKeyID: "k", SecretAccessKey: "s"})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := s.Stat(t.Context(), "x")
	if err != nil || fi.Size != 3 || fi.ETag != `"e"` {
		t.Errorf("Stat = %+v, %v; want size 3, ETag \"e\"", fi, err)
	}
}

func TestMaxConns(t *testing.T) {
	const maxConns = 2
	var inflight, most atomic.Int64
	s := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond) // give other requests a chance to overlap
		inflight.Add(-1)
		w.Header().Set("Content-Length", "0")
	}, func(c *Config) { c.MaxConns = maxConns })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := s.Stat(t.Context(), fmt.Sprint("o", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := most.Load(); got > maxConns {
		t.Errorf("%d requests in flight at once, want at most %d", got, maxConns)
	}
}
