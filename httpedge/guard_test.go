package httpedge_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/httpedge"
)

func guarded(t *testing.T, opts httpedge.GuardOptions) (http.Handler, *int) {
	t.Helper()
	writes := new(int)
	return httpedge.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			*writes++
		}
		w.WriteHeader(http.StatusNoContent)
	}), opts), writes
}

type req struct {
	method, path, remote, origin, ctype, auth, body string
}

func serve(h http.Handler, q req) *httptest.ResponseRecorder {
	r := httptest.NewRequest(q.method, "http://svc:8005"+q.path, strings.NewReader(q.body))
	if q.body == "" {
		r = httptest.NewRequest(q.method, "http://svc:8005"+q.path, nil)
	}
	r.RemoteAddr = q.remote
	for k, v := range map[string]string{"Origin": q.origin, "Content-Type": q.ctype, "Authorization": q.auth} {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestGuardWithoutToken(t *testing.T) {
	h, writes := guarded(t, httpedge.GuardOptions{})
	const lo, far = "127.0.0.1:5000", "192.0.2.7:5000"
	for _, tc := range []struct {
		name string
		q    req
		code int
	}{
		{"read from anywhere", req{method: "GET", path: "/x", remote: far}, 204},
		{"loopback JSON write", req{method: "POST", path: "/x", remote: lo, ctype: "application/json", body: `{}`}, 204},
		{"loopback IPv6 write without body", req{method: "POST", path: "/simulate/cpu-usage/5", remote: "[::1]:5000"}, 204},
		{"remote write", req{method: "POST", path: "/x", remote: far, ctype: "application/json", body: `{}`}, 403},
		{"cross-site text/plain", req{method: "POST", path: "/x", remote: lo, origin: "http://evil.example", ctype: "text/plain", body: `{"title":"x"}`}, 403},
		{"cross-site JSON", req{method: "POST", path: "/x", remote: lo, origin: "http://evil.example", ctype: "application/json", body: `{}`}, 403},
		{"same-origin page", req{method: "POST", path: "/x", remote: lo, origin: "http://svc:8005", ctype: "application/json", body: `{}`}, 204},
		{"text/plain body", req{method: "POST", path: "/x", remote: lo, ctype: "text/plain", body: `{}`}, 415},
		{"form body", req{method: "PUT", path: "/x", remote: lo, ctype: "application/x-www-form-urlencoded", body: `a=1`}, 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := *writes
			w := serve(h, tc.q)
			assert.Equal(t, tc.code, w.Code, w.Body.String())
			if tc.code >= 400 {
				assert.Equal(t, before, *writes, "a refused write reached the handler")
				var body map[string]string
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
				assert.Equal(t, "error", body["status"])
				assert.NotEmpty(t, body["error"])
			}
		})
	}
}

func TestGuardWithToken(t *testing.T) {
	ui, err := httpedge.ParseOrigins([]string{"https://ui.example"})
	require.NoError(t, err)
	h, writes := guarded(t, httpedge.GuardOptions{
		Token:      "s3cret",
		PathTokens: map[string]string{"/api/alertmanager/webhook": "hook"},
		Origins:    ui,
	})
	const far = "192.0.2.7:5000"
	for _, tc := range []struct {
		name string
		q    req
		code int
	}{
		{"no token, even from loopback", req{method: "POST", path: "/x", remote: "127.0.0.1:1"}, 401},
		{"wrong token", req{method: "POST", path: "/x", remote: far, auth: "Bearer nope"}, 401},
		{"basic auth", req{method: "POST", path: "/x", remote: far, auth: "Basic czNjcmV0"}, 401},
		{"token from anywhere", req{method: "POST", path: "/x", remote: far, auth: "Bearer s3cret"}, 204},
		{"webhook token on its path", req{method: "POST", path: "/api/alertmanager/webhook", remote: far, auth: "bearer hook"}, 204},
		{"webhook token elsewhere", req{method: "POST", path: "/api/incidents", remote: far, auth: "Bearer hook"}, 401},
		{"allowed page with token", req{method: "POST", path: "/x", remote: far, origin: "https://ui.example", auth: "Bearer s3cret"}, 204},
		{"other page with token", req{method: "POST", path: "/x", remote: far, origin: "https://evil.example", auth: "Bearer s3cret"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := *writes
			w := serve(h, tc.q)
			assert.Equal(t, tc.code, w.Code, w.Body.String())
			if tc.code == 401 {
				assert.Contains(t, w.Header().Get("WWW-Authenticate"), "Bearer")
			}
			if tc.code >= 400 {
				assert.Equal(t, before, *writes)
			}
		})
	}
}
