package httpedge

import (
	"net/http"
	"strings"
)

// CORSOptions configures [CORS]. The zero value answers no cross-origin
// request with CORS headers.
type CORSOptions struct {
	// Read is the policy for cross-origin reads (GET and HEAD) and their
	// preflights. "*" answers Access-Control-Allow-Origin: * (no
	// credentials), as the original services did.
	Read OriginPolicy
	// Write is the policy for cross-origin state-changing requests (every
	// other method). Only origins it lists are answered, by name; "*" is
	// ignored here: a page from an origin not listed gets no CORS
	// headers, so its browser refuses to send the write.
	Write OriginPolicy
	// Headers lists the request headers a preflight allows besides
	// Content-Type. Default: Authorization.
	Headers []string
}

// CORS answers cross-origin requests and preflights (OPTIONS with
// Access-Control-Request-Method) per opts, and passes every other request
// to next. A preflight is answered 204; a preflight for a method the
// origin may not use gets 204 without CORS headers, which the browser
// treats as a refusal. CORS only tells browsers what they may read and
// send: enforcing who may write is the handler's job.
func CORS(next http.Handler, opts CORSOptions) http.Handler {
	headers := strings.Join(append([]string{"Content-Type"}, defaultHeaders(opts.Headers)...), ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || SameOrigin(r) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		method := r.Method
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight {
			method = r.Header.Get("Access-Control-Request-Method")
		}
		allowed, methods := allowOrigin(h, origin, method, opts)
		if preflight {
			if allowed {
				h.Set("Access-Control-Allow-Methods", methods)
				h.Set("Access-Control-Allow-Headers", headers)
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowOrigin sets Access-Control-Allow-Origin when origin may use method,
// and returns the methods a preflight may list.
func allowOrigin(h http.Header, origin, method string, opts CORSOptions) (bool, string) {
	read := method == http.MethodGet || method == http.MethodHead
	switch {
	case opts.Write.matchListed(origin):
		h.Set("Access-Control-Allow-Origin", origin)
		return true, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
	case read && opts.Read.AllowsAny():
		h.Set("Access-Control-Allow-Origin", "*")
		return true, "GET, HEAD, OPTIONS"
	case read && opts.Read.Match(origin):
		h.Set("Access-Control-Allow-Origin", origin)
		return true, "GET, HEAD, OPTIONS"
	}
	return false, ""
}

func defaultHeaders(hs []string) []string {
	if hs == nil {
		return []string{"Authorization"}
	}
	return hs
}
