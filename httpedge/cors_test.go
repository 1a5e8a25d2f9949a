package httpedge_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/httpedge"
)

func corsHandler(t *testing.T, read, write []string) http.Handler {
	t.Helper()
	rp, err := httpedge.ParseOrigins(read)
	require.NoError(t, err)
	wp, err := httpedge.ParseOrigins(write)
	require.NoError(t, err)
	return httpedge.CORS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}), httpedge.CORSOptions{Read: rp, Write: wp})
}

func do(h http.Handler, method, origin, reqMethod string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://svc:8005/api/x", nil)
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	if reqMethod != "" {
		r.Header.Set("Access-Control-Request-Method", reqMethod)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestCORSReadsStar(t *testing.T) {
	h := corsHandler(t, []string{"*"}, nil)
	w := do(h, http.MethodGet, "http://localhost:3000", "")
	assert.Equal(t, http.StatusTeapot, w.Code, "the request itself is served")
	assert.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))

	w = do(h, http.MethodOptions, "http://localhost:3000", "GET")
	assert.Equal(t, http.StatusNoContent, w.Code)
	assert.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, w.Header().Get("Access-Control-Allow-Methods"), "GET")
	assert.Contains(t, w.Header().Get("Access-Control-Allow-Headers"), "Content-Type")

	// A write preflight from a page not allowed to write: no CORS headers.
	w = do(h, http.MethodOptions, "http://evil.example", "POST")
	assert.Equal(t, http.StatusNoContent, w.Code)
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
	w = do(h, http.MethodPost, "http://evil.example", "")
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
}

func TestCORSWritesListedOriginsOnly(t *testing.T) {
	h := corsHandler(t, []string{"https://ui.example"}, []string{"https://ui.example", "*"})
	w := do(h, http.MethodOptions, "https://ui.example", "POST")
	assert.Equal(t, "https://ui.example", w.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, w.Header().Get("Access-Control-Allow-Methods"), "POST")
	assert.Contains(t, w.Header().Values("Vary"), "Origin")
	w = do(h, http.MethodOptions, "https://other.example", "POST")
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), `"*" is never honoured for writes`)
	w = do(h, http.MethodGet, "https://other.example", "")
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
}

func TestCORSLeavesSameOriginAlone(t *testing.T) {
	h := corsHandler(t, []string{"*"}, nil)
	r := httptest.NewRequest(http.MethodOptions, "http://svc:8005/api/x", nil)
	r.Header.Set("Origin", "http://svc:8005")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusTeapot, w.Code)
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
}
