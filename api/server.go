package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/keyraft/keyraft/auth"
	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/policy"
	"github.com/keyraft/keyraft/quota"
)

// Store is the replicated state as the API layer sees it.
type Store interface {
	// Apply proposes an encoded fsm.Command and returns the JSON of the
	// fsm.Result it produced once committed and applied. An error means the
	// command could not be committed (no leader, timeout, shutdown); whether
	// it was applied is then unknown.
	Apply(ctx context.Context, cmd []byte) ([]byte, error)
	// State is the local replica, used for every read.
	State() *fsm.FSM
}

// Authentication modes (Config.Auth).
const (
	// AuthNone accepts every request, signed or not (docs/auth.md): a
	// request signed with an access key of Config.Credentials acts as that
	// principal and is authorized like a verified one; any other request is
	// the administrator of the default account and is not authorized.
	AuthNone = "none"
	// AuthSigV4 verifies AWS Signature Version 4 on every request with
	// Config.Verifier; the principal decides the account, the credential
	// scope the region, and every operation is authorized.
	AuthSigV4 = "sigv4"
)

// Config configures a Server. Zero values select the defaults.
type Config struct {
	// DefaultRegion is the region of requests without a SigV4 credential
	// scope (default "us-east-1"; "none" mode only).
	DefaultRegion string
	// AccountID is the default account: the account of requests that map
	// to no configured principal in "none" mode (default "111122223333").
	AccountID string
	// Auth is AuthNone (the default) or AuthSigV4.
	Auth string
	// Verifier verifies signatures; required with AuthSigV4.
	Verifier *auth.Verifier
	// Credentials are the principals. With AuthSigV4 they should be the
	// Verifier's, so that their identity policies are checked by New; with
	// AuthNone (optional) a request whose access key is listed acts as
	// that principal.
	Credentials *auth.Credentials
	// Quotas, when set, limits the request rate per caller account, region
	// and quota class (ThrottlingException). nil: no quotas.
	Quotas *quota.Limiter
	// Sealer seals key material and import private keys before they are
	// replicated. Without one, operations that create or import material
	// answer KMSInternalException.
	Sealer *engine.Sealer
	// DeletionDay is the length of one "day" of the ScheduleKeyDeletion
	// pending window (default 24h; shorter only in tests).
	DeletionDay time.Duration
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Observe, when set, is called once per request after it is answered,
	// with the operation ("" when none was recognised), the AWS error code
	// ("" on success), the HTTP status and the time taken. It feeds
	// metrics; it must be cheap and safe for concurrent use.
	Observe func(op, errorCode string, status int, took time.Duration)
	// GrantPropagationDelay models the eventual consistency of grants on
	// this node (docs/consistency.md): for this long after a grant's
	// CreationDate the node acts as if it had not heard of it (only a
	// grant token lets the grantee use it), and for this long after the
	// grant is retired or revoked the node still honours it. 0: a grant
	// takes effect as soon as this node has applied it, and stops the
	// moment it applies its retirement.
	GrantPropagationDelay time.Duration
	// GrantTombstoneRetention is how long the cluster keeps the tombstone
	// of a retired or revoked grant (default 1h; the leader purges older
	// ones). A grant token for a grant this node does not know at all is
	// honoured only for this long after the grant's creation, so a token
	// can never revive a grant whose tombstone was purged.
	GrantTombstoneRetention time.Duration
	// CheckFresh, when set, is asked before every operation served from the
	// local replica (MACs, Describe, List*, Get*); a non-nil error means this
	// node's copy may be stale and the request is refused with
	// KeyUnavailableException (500, retried by the SDKs) carrying the
	// error's text.
	CheckFresh func() error
	// Logger receives the access log (Debug) and internal errors
	// (default: discard).
	Logger *slog.Logger
}

// DefaultGrantTombstoneRetention is the default of
// Config.GrantTombstoneRetention (and of the agent's
// -grant-tombstone-retention).
const DefaultGrantTombstoneRetention = time.Hour

const (
	defaultRegion       = "us-east-1"
	defaultAccountID    = "111122223333"
	defaultMaxBodyBytes = 1 << 20
	targetPrefix        = "TrentService."
	contentTypeAmzJSON  = "application/x-amz-json-1.1"
)

// Server is the AWS KMS wire protocol front end of one node.
type Server struct {
	cfg      Config
	store    Store
	log      *slog.Logger
	ops      map[string]*opInfo
	tokenKey []byte // HMAC key authenticating import tokens
	handler  http.Handler

	sigv4       bool
	anonymous   callerInfo                      // "none" mode caller without a configured access key
	principals  map[*auth.Principal]*callerInfo // from Config.Credentials, read-only
	lazyCallers sync.Map                        // *auth.Principal -> *callerInfo, for others
	policies    policyCache

	panics atomic.Int64 // recovered panics (tests assert none)
}

// reqCtx carries what every operation needs about its request.
type reqCtx struct {
	ctx context.Context
	// scope is the caller's account and the request's region.
	scope  fsm.Scope
	caller *callerInfo
	op     *opInfo
	now    time.Time
	// buf is a pooled output buffer: an operation may build its answer with
	// append(rc.buf[:0], ...) and must store the grown slice back in rc.buf.
	buf []byte
}

// opFunc runs one operation on a decoded-later body. It returns the complete
// JSON answer (possibly built in rc.buf) or an error. A nil body with no error
// means an empty 200 answer.
type opFunc func(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError)

// New builds a Server. store must not be nil. It fails on an unknown Auth
// mode, AuthSigV4 without a Verifier, and identity policies of
// Config.Credentials that the policy language does not accept.
func New(cfg Config, store Store) (*Server, error) {
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = defaultRegion
	}
	if cfg.AccountID == "" {
		cfg.AccountID = defaultAccountID
	}
	if cfg.DeletionDay <= 0 {
		cfg.DeletionDay = 24 * time.Hour
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.GrantPropagationDelay < 0 {
		return nil, errors.New("api: the grant propagation delay cannot be negative")
	}
	if cfg.GrantTombstoneRetention <= 0 {
		cfg.GrantTombstoneRetention = DefaultGrantTombstoneRetention
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, store: store, log: log}
	s.policies.log = log
	switch cfg.Auth {
	case "", AuthNone:
		s.cfg.Auth = AuthNone
	case AuthSigV4:
		if cfg.Verifier == nil {
			return nil, errors.New("api: sigv4 authentication needs a Verifier")
		}
		s.sigv4 = true
	default:
		return nil, fmt.Errorf("api: unknown authentication mode %q (want %q or %q)", cfg.Auth, AuthSigV4, AuthNone)
	}
	s.anonymous = callerInfo{pc: policy.Caller{ARN: "arn:aws:iam::" + cfg.AccountID + ":root", AccountID: cfg.AccountID}}
	s.principals = make(map[*auth.Principal]*callerInfo, cfg.Credentials.Len())
	for _, p := range cfg.Credentials.Principals() {
		c, err := newCallerInfo(p)
		if err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		s.principals[p] = c
	}
	if cfg.Sealer != nil {
		s.tokenKey = cfg.Sealer.DeriveKey("keyraft-api-import-token")
	}
	s.ops = operations()

	r := mux.NewRouter()
	r.SkipClean(true)
	r.Methods(http.MethodPost).Path("/").Handler(http.HandlerFunc(s.serveAPI))
	r.MethodNotAllowedHandler = http.HandlerFunc(s.serveMethodNotAllowed)
	r.NotFoundHandler = http.HandlerFunc(s.serveNotFound)
	s.handler = r
	return s, nil
}

// Handler is the HTTP handler serving the API: POST / with an X-Amz-Target.
// It wraps the router with request ids, panic recovery and the access log.
func (s *Server) Handler() http.Handler { return s }

// ServeHTTP implements http.Handler (same as Handler()).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := rwPool.Get().(*respWriter)
	rw.ResponseWriter = w
	rw.reqID = uuid.NewString()
	rw.status = 0
	rw.op = ""
	rw.errCode = ""
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			s.panics.Add(1)
			s.log.Error("api: recovered panic", "request_id", rw.reqID, "op", rw.op,
				"panic", p, "stack", string(debug.Stack()))
			if rw.status == 0 {
				s.writeError(rw, errInternal("An internal error occurred; the request was not completed. Retry the request."))
			}
		}
		if s.cfg.Observe != nil {
			s.cfg.Observe(rw.op, rw.errCode, rw.status, time.Since(start))
		}
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "api request",
				slog.String("op", rw.op),
				slog.Int("status", rw.status),
				slog.Duration("duration", time.Since(start)),
				slog.String("request_id", rw.reqID))
		}
		rw.ResponseWriter = nil
		rw.rc = reqCtx{} // drop references to the request
		rwPool.Put(rw)
	}()
	if r.Method == http.MethodPost && r.URL.Path == "/" && r.URL.RawPath == "" {
		// The hot path: exactly the router's POST / route, without the
		// per-request context copies gorilla/mux makes for route variables.
		s.serveAPI(rw, r)
		return
	}
	s.handler.ServeHTTP(rw, r)
}

// respWriter carries the request id and records the status for the access
// log. It is pooled.
type respWriter struct {
	http.ResponseWriter
	reqID   string
	op      string
	errCode string // the AWS error answered, if any
	status  int
	rc      reqCtx // the operation's context, pooled with the writer
}

var rwPool = sync.Pool{New: func() any { return new(respWriter) }}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// smallBody is below net/http's buffering threshold (2048 bytes): answers this
// small get an automatic Content-Length.
const smallBody = 1024

var (
	hdrContentType = []string{contentTypeAmzJSON}
	hdrAllowPost   = []string{http.MethodPost}
)

// write sends a complete answer.
func (s *Server) write(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = hdrContentType
	if rw, ok := w.(*respWriter); ok {
		h["X-Amzn-Requestid"] = []string{rw.reqID}
	} else {
		h["X-Amzn-Requestid"] = []string{uuid.NewString()}
	}
	if len(body) > smallBody {
		// net/http sets Content-Length itself for small complete answers;
		// set it for larger ones so that they are not chunked.
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(status)
	if len(body) > 0 {
		_, _ = w.Write(body)
	}
}

func (s *Server) writeError(w http.ResponseWriter, e *apiError) {
	if rw, ok := w.(*respWriter); ok {
		rw.errCode = e.code
	}
	bp := bufPool.Get().(*[]byte)
	b := appendError((*bp)[:0], e)
	s.write(w, e.status(), b)
	putBuf(bp, b)
}

func (s *Server) serveNotFound(w http.ResponseWriter, r *http.Request) {
	s.writeErrorStatus(w, http.StatusNotFound, newErr(codeUnknownOperation,
		"No KMS operation is served at "+r.Method+" "+r.URL.EscapedPath()+"; send POST / with an X-Amz-Target header."))
}

func (s *Server) serveMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header()["Allow"] = hdrAllowPost
	s.writeErrorStatus(w, http.StatusMethodNotAllowed, newErr(codeMethodNotAllowed,
		"Method "+r.Method+" is not allowed on /; KMS operations are POST / with an X-Amz-Target header."))
}

func (s *Server) writeErrorStatus(w http.ResponseWriter, status int, e *apiError) {
	if rw, ok := w.(*respWriter); ok {
		rw.errCode = e.code
	}
	s.write(w, status, appendError(nil, e))
}

// Buffers for request bodies and answers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func putBuf(bp *[]byte, b []byte) {
	if cap(b) > 256<<10 {
		return // don't keep huge buffers
	}
	*bp = b[:0]
	bufPool.Put(bp)
}

// serveAPI is POST /: one KMS operation. The order of the checks is AWS's:
// the request's shape (operation, content type, body), authentication, the
// request quota, this node's freshness, then the operation itself
// (validation, key lookup, authorization, key state, DryRun).
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rw, _ := w.(*respWriter)
	target := r.Header.Get("X-Amz-Target")
	name, hasPrefix := strings.CutPrefix(target, targetPrefix)
	if rw != nil {
		rw.op = name
		if !hasPrefix {
			rw.op = target
		}
	}
	op := s.ops[name]
	if !hasPrefix || op == nil {
		if target == "" {
			s.writeError(w, newErr(codeUnknownOperation, "The X-Amz-Target header is missing; set it to TrentService.<Operation>."))
		} else {
			s.writeError(w, newErr(codeUnknownOperation, "Unknown operation "+strconv.Quote(target)+"; X-Amz-Target must be TrentService.<Operation>."))
		}
		return
	}
	if aerr := checkContentType(r.Header.Get("Content-Type")); aerr != nil {
		s.writeError(w, aerr)
		return
	}

	// Read the body into a pooled buffer, bounded by MaxBodyBytes.
	inp := bufPool.Get().(*[]byte)
	body, aerr := s.readBody(w, r, (*inp)[:0])
	if aerr != nil {
		putBuf(inp, body)
		s.writeError(w, aerr)
		return
	}

	caller, region, aerr := s.authenticate(r, body)
	if aerr != nil {
		putBuf(inp, body)
		s.writeError(w, aerr)
		return
	}
	if !s.cfg.Quotas.Allow(caller.pc.AccountID, region, name) {
		putBuf(inp, body)
		s.writeError(w, errThrottling)
		return
	}

	if s.cfg.CheckFresh != nil && op.localRead {
		if err := s.cfg.CheckFresh(); err != nil {
			putBuf(inp, body)
			s.writeError(w, newErr(codeKeyUnavailable, err.Error()))
			return
		}
	}

	outp := bufPool.Get().(*[]byte)
	var rc *reqCtx
	if rw != nil {
		rc = &rw.rc
	} else {
		rc = new(reqCtx)
	}
	*rc = reqCtx{
		ctx:    r.Context(),
		scope:  fsm.Scope{Account: caller.pc.AccountID, Region: region},
		caller: caller,
		op:     op,
		now:    s.cfg.Now(),
		buf:    (*outp)[:0],
	}
	out, aerr := op.fn(s, rc, body)
	putBuf(inp, body)
	if aerr != nil {
		if aerr.code == codeInternal {
			s.log.Warn("api: internal error", "op", name, "request_id", reqIDOf(w), "error", aerr.msg)
		}
		s.writeError(w, aerr)
	} else {
		s.write(w, http.StatusOK, out)
	}
	putBuf(outp, rc.buf)
}

var errThrottling = newErr(quota.ThrottlingCode, quota.ThrottlingMessage)

// authenticate establishes who sent the request and in which region.
//
// sigv4: the signature is verified over the body as read; the principal
// gives the account, the credential scope the region. Failures are the
// verifier's AWS errors.
//
// none: nothing is verified. The region is the credential scope's, if the
// request carries one (else DefaultRegion); a request whose access key is one
// of Config.Credentials acts as that principal, any other as the
// (unauthorized) administrator of the default account.
func (s *Server) authenticate(r *http.Request, body []byte) (*callerInfo, string, *apiError) {
	if s.sigv4 {
		id, err := s.cfg.Verifier.Verify(r, body)
		if err != nil {
			var ae *auth.Error
			if errors.As(err, &ae) {
				return nil, "", &apiError{code: ae.Code, msg: ae.Message, httpStatus: ae.Status}
			}
			return nil, "", errInternal("The request could not be authenticated.")
		}
		return s.callerFor(id.Principal), id.Region, nil
	}
	h := r.Header.Get("Authorization")
	region, aerr := regionOf(h, s.cfg.DefaultRegion)
	if aerr != nil {
		return nil, "", aerr
	}
	if s.cfg.Credentials != nil && h != "" {
		if p, ok := s.cfg.Credentials.Lookup(accessKeyOf(h)); ok {
			return s.callerFor(p), region, nil
		}
	}
	return &s.anonymous, region, nil
}

func reqIDOf(w http.ResponseWriter) string {
	if rw, ok := w.(*respWriter); ok {
		return rw.reqID
	}
	return ""
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf []byte) ([]byte, *apiError) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return buf, errSerialization("The request body is larger than the maximum of " +
			strconv.FormatInt(s.cfg.MaxBodyBytes, 10) + " bytes.")
	}
	if r.Body == nil || r.Body == http.NoBody {
		return buf, nil
	}
	under := w
	if rw, ok := w.(*respWriter); ok {
		under = rw.ResponseWriter // so net/http can close the connection on overflow
	}
	body := http.MaxBytesReader(under, r.Body, s.cfg.MaxBodyBytes)
	if r.ContentLength > 0 && int64(cap(buf)) < r.ContentLength {
		buf = make([]byte, 0, r.ContentLength)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return buf, errSerialization("The request body is larger than the maximum of " +
					strconv.FormatInt(s.cfg.MaxBodyBytes, 10) + " bytes.")
			}
			return buf, errSerialization("The request body could not be read: " + err.Error())
		}
	}
}

// checkContentType accepts application/x-amz-json-1.1 and application/json
// (with parameters), and a missing Content-Type.
func checkContentType(ct string) *apiError {
	if ct == "" || ct == contentTypeAmzJSON {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == contentTypeAmzJSON || mt == "application/json") {
		return nil
	}
	return newErr(codeUnknownOperation, "Unsupported Content-Type "+strconv.Quote(ct)+
		"; send application/x-amz-json-1.1.")
}

// regionOf returns the region of a SigV4 credential scope
// (Credential=AKID/YYYYMMDD/REGION/kms/aws4_request), or def for requests
// that carry no SigV4 Authorization header.
func regionOf(auth, def string) (string, *apiError) {
	if auth == "" {
		return def, nil
	}
	const scheme = "AWS4-HMAC-SHA256"
	if !strings.HasPrefix(auth, scheme) {
		return def, nil // other schemes (e.g. SigV4a) carry no region in the scope
	}
	rest := auth[len(scheme):]
	i := strings.Index(rest, "Credential=")
	if i < 0 {
		return "", newErr(codeIncompleteSignature, "Authorization header requires 'Credential' parameter.")
	}
	cred := rest[i+len("Credential="):]
	if j := strings.IndexAny(cred, ", "); j >= 0 {
		cred = cred[:j]
	}
	// AKID / date / region / service / aws4_request
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" || !validRegion(parts[2]) {
		return "", newErr(codeIncompleteSignature, "Authorization header has a malformed Credential scope; expected Credential=<access key>/<date>/<region>/kms/aws4_request.")
	}
	return parts[2], nil
}

func validRegion(r string) bool {
	if len(r) == 0 || len(r) > 32 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			return false
		}
	}
	return true
}

// apply proposes one command in the caller's scope and returns the FSM's
// verdict.
func (s *Server) apply(rc *reqCtx, op fsm.Op, payload any) (*fsm.Result, *apiError) {
	return s.applyIn(rc, rc.scope, op, payload)
}

// applyIn proposes one command in scope (another account's, for the grant
// operations on a key named by a cross-account ARN).
func (s *Server) applyIn(rc *reqCtx, scope fsm.Scope, op fsm.Op, payload any) (*fsm.Result, *apiError) {
	cmd, err := fsm.Encode(op, rc.now.UnixNano(), scope, payload)
	if err != nil {
		return nil, errInternal("The request could not be encoded for replication.")
	}
	out, err := s.store.Apply(rc.ctx, cmd)
	if err != nil {
		s.log.Warn("api: apply failed", "op", string(op), "error", err.Error())
		return nil, errInternal(unavailableMessage(rc.ctx, err))
	}
	var res fsm.Result
	if err := json.Unmarshal(out, &res); err != nil {
		s.log.Error("api: undecodable apply result", "op", string(op), "error", err.Error())
		return nil, errInternal("The cluster returned an undecodable result; the outcome of the request is unknown.")
	}
	if res.Error != nil {
		return nil, fromFSM(res.Error)
	}
	return &res, nil
}

// The Store's error categories. A Store wraps its own errors with these
// (errors.Is) so that the API can explain a failed write without knowing the
// cluster layer.
var (
	// ErrNoLeader: the write was not applied because no leader could be
	// reached in time.
	ErrNoLeader = errors.New("no leader")
	// ErrOutcomeUnknown: the write may or may not have been applied (the
	// leader was lost after it was sent).
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrShuttingDown: this node is stopping.
	ErrShuttingDown = errors.New("shutting down")
)

// unavailableMessage explains an Apply failure to the client; all of them
// are retryable (KMSInternalException, HTTP 500, is retried by the SDKs).
func unavailableMessage(ctx context.Context, err error) string {
	switch {
	case ctx.Err() != nil:
		return "The request was cancelled before the cluster committed it; its outcome is unknown. Retry the request."
	case errors.Is(err, ErrShuttingDown):
		return "The request could not be completed because this node is shutting down; retry."
	case errors.Is(err, ErrNoLeader):
		return "The request could not be completed because the cluster has no leader; retry."
	case errors.Is(err, ErrOutcomeUnknown):
		return "The cluster lost its leader while committing the request; its outcome is unknown. Retry the request."
	case errors.Is(err, context.DeadlineExceeded):
		return "The request could not be completed because the cluster did not commit it in time; retry."
	}
	return "The request could not be completed because the cluster is unavailable; retry."
}
