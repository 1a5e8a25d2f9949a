// Package httpedge is the HTTP edge that promflow's services share: which
// browser origins may call them (CORS) and connect to their WebSockets.
//
// Build an [OriginPolicy] with [ParseOrigins] from a list such as
// "*" or "http://localhost:*,https://dashboard.example.com", then wrap a
// handler with [CORS]. Same-origin requests and requests without an Origin
// header (curl, server-side clients) are never refused by this package.
//
// An OriginPolicy is immutable once built and safe for concurrent use; so
// is the handler CORS returns.
package httpedge
