package httpedge

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
)

// GuardOptions configures [Guard]. The zero value lets state-changing
// requests through only from loopback clients, and refuses cross-site
// browser requests.
type GuardOptions struct {
	// Token, if set, is required on every state-changing request as
	// "Authorization: Bearer TOKEN"; then the client's address does not
	// matter.
	Token string
	// PathTokens are further tokens accepted on one path each (exact
	// path), e.g. the Alertmanager webhook's own token.
	PathTokens map[string]string
	// Origins lists the cross-origin pages allowed to write (besides
	// same-origin pages and clients that send no Origin); "*" is ignored.
	Origins OriginPolicy
	// JSON reports whether a request's route takes a JSON body: such a
	// request with a body of another Content-Type is refused with 415 (a
	// cross-site form or text/plain POST cannot pass for JSON). Nil: every
	// state-changing request with a body must be JSON.
	JSON func(r *http.Request) bool
}

// Guard protects next's state-changing routes (every method but GET, HEAD
// and OPTIONS):
//
//   - with opts.Token (or a path token) set, a request without the token is
//     refused with 401;
//   - without a token, only loopback clients may write (403 otherwise);
//   - a browser request from another origin that opts.Origins does not
//     list is refused with 403, token or not;
//   - a body that is not JSON on a JSON route is refused with 415.
//
// Refusals are JSON, {"status":"error","error":...}. Reads pass untouched.
func Guard(next http.Handler, opts GuardOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if code, msg := check(r, &opts); code != 0 {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="promflow"`)
			}
			Error(w, code, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check returns the refusal for a state-changing request, or 0.
func check(r *http.Request, opts *GuardOptions) (int, string) {
	if origin := r.Header.Get("Origin"); origin != "" && !SameOrigin(r) && !opts.Origins.matchListed(origin) {
		return http.StatusForbidden, "cross-origin write refused: origin " + quote(origin) + " is not allowed to change state"
	}
	tokens := tokensFor(r, opts)
	switch {
	case len(tokens) > 0:
		if !bearerMatches(r, tokens) {
			return http.StatusUnauthorized, "this route changes state: send Authorization: Bearer <write token>"
		}
	case !Loopback(r):
		return http.StatusForbidden, "writes are accepted from loopback clients only unless a write token is configured"
	}
	if hasBody(r) && (opts.JSON == nil || opts.JSON(r)) && !isJSON(r.Header.Get("Content-Type")) {
		return http.StatusUnsupportedMediaType, "request body must be application/json"
	}
	return 0, ""
}

func tokensFor(r *http.Request, opts *GuardOptions) []string {
	var ts []string
	if opts.Token != "" {
		ts = append(ts, opts.Token)
	}
	if t := opts.PathTokens[r.URL.Path]; t != "" {
		ts = append(ts, t)
	}
	return ts
}

// bearerMatches compares the request's bearer token with each of tokens in
// constant time.
func bearerMatches(r *http.Request, tokens []string) bool {
	auth := r.Header.Get("Authorization")
	scheme, got, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	ok = false
	for _, t := range tokens {
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(t)) == 1 {
			ok = true
		}
	}
	return ok
}

// Loopback reports whether r comes from a loopback address.
func Loopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// Error writes the JSON error shape of promflow's services,
// {"status":"error","error":msg}, with code.
func Error(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "error": msg})
}

func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// WarnIfOpen logs a warning when ln listens beyond the loopback interface
// and no write token is set: writes are then refused to other hosts, and
// anyone who can reach the port may read.
func WarnIfOpen(log *slog.Logger, ln net.Listener, token string) {
	a, ok := ln.Addr().(*net.TCPAddr)
	if token != "" || !ok || a.IP.IsLoopback() {
		return
	}
	log.Warn("listening beyond loopback without a write token: state-changing requests are accepted from loopback clients only; set -write-token to allow them from elsewhere", "addr", ln.Addr().String())
}
