package httpedge

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// OriginPolicy says which cross-origin browser pages are allowed. The zero
// value allows none (same-origin and Origin-less requests only).
type OriginPolicy struct {
	any      bool
	patterns []originPattern
}

// originPattern is one allowed origin: scheme ("" for any), host (a
// path.Match pattern on the lower-case host name, IPv6 without brackets)
// and port ("*" for any, "" for the scheme's default only).
type originPattern struct {
	scheme, host, port string
}

// LocalDevOrigins are the origins of pages served from this machine during
// development, on any port: http://localhost:*, http://127.0.0.1:* and
// http://[::1]:*.
var LocalDevOrigins = []string{"http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"}

// ParseOrigins builds a policy from a list of entries, each "*" (any
// origin), an origin ("https://app.example.com", "http://localhost:3000"),
// or an origin whose port is "*" and whose host may hold path.Match
// wildcards ("http://localhost:*", "https://*.example.com"). An entry
// without a scheme matches both http and https. Entries are trimmed; empty
// ones are skipped; a malformed one is an error naming it.
func ParseOrigins(entries []string) (OriginPolicy, error) {
	var p OriginPolicy
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch e {
		case "":
			continue
		case "*":
			p.any = true
			continue
		}
		op, err := parsePattern(e)
		if err != nil {
			return OriginPolicy{}, err
		}
		p.patterns = append(p.patterns, op)
	}
	return p, nil
}

// SplitList splits a comma-separated flag or environment value.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parsePattern(e string) (originPattern, error) {
	var op originPattern
	rest := e
	if i := strings.Index(e, "://"); i >= 0 {
		op.scheme, rest = e[:i], e[i+3:]
		if op.scheme != "http" && op.scheme != "https" {
			return op, fmt.Errorf("httpedge: origin %q: scheme must be http or https", e)
		}
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@ ") {
		return op, fmt.Errorf("httpedge: origin %q: want scheme://host[:port]", e)
	}
	host, port := rest, ""
	if h, p, err := net.SplitHostPort(rest); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
		host = rest[1 : len(rest)-1]
	}
	if port != "" && port != "*" && strings.Trim(port, "0123456789") != "" {
		return op, fmt.Errorf("httpedge: origin %q: bad port", e)
	}
	if _, err := path.Match(host, ""); err != nil || host == "" {
		return op, fmt.Errorf("httpedge: origin %q: bad host pattern", e)
	}
	op.host, op.port = host, port
	if (op.scheme == "http" && port == "80") || (op.scheme == "https" && port == "443") {
		op.port = "" // browsers leave the default port out of Origin
	}
	return op, nil
}

// AllowsAny reports whether the policy allows every origin ("*").
func (p OriginPolicy) AllowsAny() bool { return p.any }

// Match reports whether origin (an Origin header value) is allowed by the
// policy's entries. It says nothing about same-origin requests: see
// [OriginPolicy.Allows].
func (p OriginPolicy) Match(origin string) bool {
	return p.any || p.matchListed(origin)
}

// matchListed is Match without "*": the origin must match an entry.
func (p OriginPolicy) matchListed(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	for _, op := range p.patterns {
		if op.scheme != "" && op.scheme != u.Scheme {
			continue
		}
		if op.port != "*" && op.port != port {
			continue
		}
		if ok, _ := path.Match(op.host, host); ok {
			return true
		}
	}
	return false
}

// Allows reports whether r may be served as far as its origin goes: it has
// no Origin header, its Origin is the request's own host (same-origin), or
// the policy matches it.
func (p OriginPolicy) Allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	return origin == "" || SameOrigin(r) || p.Match(origin)
}

// SameOrigin reports whether r's Origin header names the host r was sent
// to.
func SameOrigin(r *http.Request) bool {
	u, err := url.Parse(r.Header.Get("Origin"))
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
