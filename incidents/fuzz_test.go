package incidents_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/promflow/promflow/incidents"
)

// FuzzHandler sends arbitrary methods, paths, query strings and bodies to
// the REST API on a real database: nothing panics, every answer is the JSON
// envelope with a 2xx or 4xx code (never a 5xx while the database is up), no
// error text carries SQL, and a refused request (4xx) changes nothing. Run
// with go test -run '^$' -fuzz FuzzHandler -fuzztime 30s ./incidents/
func FuzzHandler(f *testing.F) {
	s, pool := newStore(f, incidents.Options{})
	in, err := s.Open(ctxT(f), incidents.NewIncident{Title: "seed", Source: "api"})
	if err != nil {
		f.Fatal(err)
	}
	h := incidents.NewHandler(s, incidents.HandlerOptions{MaxBodyBytes: 4096})
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodPatch}
	for _, seed := range []struct {
		m            uint8
		target, body string
	}{
		{0, "/api/metrics/incidents/by-service", ""},
		{0, "/api/metrics/incidents/details?limit=5&service=api&status=open&severity=warning", ""},
		{0, "/api/metrics/incidents/details?cursor=MTc2MDAwMDAwMDAwMDAwMCwwMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDA", ""},
		{0, "/api/metrics/incidents/stats?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00.5%2B01:00&service=api", ""},
		{0, "/api/metrics/incidents/stats?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z", ""},
		{0, "/api/metrics/incidents/stats?from=-0001-01-01T00:00:00Z", ""},
		{1, "/api/incidents", `{"title":"t","severity":"critical","source":"db","labels":{"a":"b"}}`},
		{1, "/api/incidents", `{"title":"t","source":"db","labels":{"a":null}}`},
		{1, "/api/incidents", `{"title":"\u0000","source":"\ud800"}`},
		{0, "/api/incidents/" + in.ID, ""},
		{1, "/api/incidents/" + in.ID + "/acknowledge", ""},
		{1, "/api/incidents/" + in.ID + "/resolve", "{}"},
		{1, "/api/incidents/" + in.ID + "/reopen", ""},
		{1, "/api/incidents/" + strings.ToUpper(in.ID) + "/reopen", ""},
		{1, "/api/alertmanager/webhook", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A","service":"x"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"f"}]}`},
		{1, "/api/alertmanager/webhook", `{"version":"4","alerts":[{"status":"resolved","labels":{},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]}`},
		{2, "/api/incidents", "{}"},
		{0, "/api/metrics/incidents/details?limit=%zz", ""},
		{3, "/nope", ""},
		// Issue 12's inputs.
		{1, "/api/incidents/" + in.ID + "/close", ""},
		{1, "/api/incidents", `{"title":"\ud800","source":"a"}`},
		{1, "/api/incidents", `{"title":"\udc00\ud800","source":"a"}`},
		{1, "/api/incidents", `{"title":"ok \ud83d\ude00","source":"a"}`},
		{1, "/api/incidents", "{\"title\":\"\xff\xfe\",\"source\":\"a\"}"},
		{1, "/api/incidents", `{"title":"t","source":"a","labels":{"k\u0000":"v"}}`},
		{1, "/api/incidents", `{"title":"t","source":"a","severity":"bogus"}`},
		{1, "/api/incidents", `{"title":"t","source":"a"} x`},
		{1, "/api/incidents", `{"title":"t","source":"a"}{"title":"t","source":"a"}`},
		{1, "/api/alertmanager/webhook", `{"version":"4","alerts":[{"status":"resolved","labels":{"alertname":"B"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T00:05:00Z","fingerprint":"early"},{"status":"firing","labels":{"alertname":"B"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"early"}]}`},
		{1, "/api/alertmanager/webhook", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A","v":"\ud800"},"startsAt":"2026-01-01T00:00:00Z"}]}`},
		{1, "/api/alertmanager/webhook", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"},"annotations":{"summary":"\u0000"},"startsAt":"2026-01-01T00:00:00Z"}]}`},
		{1, "/api/alertmanager/webhook", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"0000-01-01T00:00:00Z"}]}`},
		{1, "/api/alertmanager/webhook", `{"version":"4","alerts":[]} trailing`},
		{0, "/api/metrics/incidents/details?limit=0x10", ""},
		{0, "/api/metrics/incidents/details?limit=1e3", ""},
		{0, "/api/metrics/incidents/details?severity=HIGH&service=%00", ""},
		{0, "/api/metrics/incidents/details?cursor=LTMwMDAwMDAwMDAwMDAwMDAwMDAsMDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw", ""},
		{0, "/api/metrics/incidents/stats?to=0001-01-01T00:00:00Z", ""},
		{0, "/api/metrics/incidents/stats?from=0001-01-01T00:00:00%2B01:00", ""},
		{0, "/api/metrics/incidents/stats?from=9999-12-31T23:59:59.999999999Z&to=10000-01-01T00:00:00Z", ""},
	} {
		f.Add(seed.m, seed.target, seed.body)
	}
	f.Fuzz(func(t *testing.T, m uint8, target, body string) {
		req, err := http.NewRequest(methods[int(m)%len(methods)], target, strings.NewReader(body))
		if err != nil || !strings.HasPrefix(req.URL.Path, "/") {
			t.Skip()
		}
		before := tableDigest(t, pool)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 400 && rec.Code < 500 {
			if after := tableDigest(t, pool); after != before {
				t.Fatalf("%s %q %q: refused with %d but the table changed: %s", req.Method, target, body, rec.Code, rec.Body.String())
			}
		}
		if !utf8.ValidString(body) && req.Method == http.MethodPost && rec.Code < 300 {
			t.Fatalf("%s %q: a body that is not UTF-8 was accepted (%d)", req.Method, target, rec.Code)
		}
		if rec.Code >= 300 && rec.Code < 400 {
			// ServeMux redirects paths that are not clean to the clean one.
			if p := req.URL.Path; path.Clean(p) == p || path.Clean(p)+"/" == p {
				t.Fatalf("%s %q: redirect %d for a clean path", req.Method, target, rec.Code)
			}
			return
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %q %q: %d %s", req.Method, target, body, rec.Code, rec.Body.String())
		}
		var env struct {
			Status string          `json:"status"`
			Data   json.RawMessage `json:"data"`
			Error  string          `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s %q: not JSON (%v): %q", req.Method, target, err, rec.Body.String())
		}
		if rec.Code >= 400 {
			if env.Status != "error" || env.Error == "" {
				t.Fatalf("%s %q: %d without an error envelope: %s", req.Method, target, rec.Code, rec.Body.String())
			}
			for _, leak := range []string{"SELECT", "INSERT", "UPDATE ", "incidents_", "SQLSTATE"} {
				if bytes.Contains(rec.Body.Bytes(), []byte(leak)) {
					t.Fatalf("%s %q: error leaks %q: %s", req.Method, target, leak, rec.Body.String())
				}
			}
		} else if env.Status != "success" {
			t.Fatalf("%s %q: %d with status %q", req.Method, target, rec.Code, env.Status)
		}
	})
}
