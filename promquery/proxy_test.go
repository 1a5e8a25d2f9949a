package promquery_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/promquery"
)

// These tests put a small reverse proxy in front of the real Prometheus to
// play a gateway that refuses POST, that demands TLS (with a client
// certificate), a bearer token or basic auth and a tenant header, that
// serves under a path prefix, or that counts the requests of retries.

func proxyTo(t *testing.T, target string, tls bool, gate func(w http.ResponseWriter, r *http.Request) bool) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gate(w, r) {
			rp.ServeHTTP(w, r)
		}
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestGatewaysInFrontOfPrometheus(t *testing.T) {
	// Client behaviour, not engine behaviour: one engine is enough.
	e := startEnv(t, engines[0])

	t.Run("GETFallback", func(t *testing.T) {
		var mu sync.Mutex
		var methods []string
		for _, status := range []int{http.StatusMethodNotAllowed, http.StatusNotImplemented, http.StatusForbidden} {
			mu.Lock()
			methods = nil
			mu.Unlock()
			srv := proxyTo(t, e.url, false, func(w http.ResponseWriter, r *http.Request) bool {
				mu.Lock()
				methods = append(methods, r.Method)
				mu.Unlock()
				if r.Method == http.MethodPost {
					http.Error(w, "POST not allowed here", status)
					return false
				}
				return true
			})
			var logs bytes.Buffer
			c := client(t, srv.URL, promquery.Options{
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			ctx := ctx30(t)
			v, _, err := c.Vector(ctx, `promquery_test_gauge{tag="plain"}`, time.Time{})
			require.NoError(t, err, "status %d", status)
			assert.Contains(t, logs.String(), "falling back to GET")
			require.Len(t, v, 1)
			// After 405 or 501 the client remembers: the next query goes
			// straight to GET. A 403 is not remembered (an expired
			// authorization, a rule on one request): POST is tried again.
			_, err = c.QueryRaw(ctx, `vector(1)`, time.Time{})
			require.NoError(t, err)
			want := []string{"POST", "GET", "GET"}
			if status == http.StatusForbidden {
				want = []string{"POST", "GET", "POST", "GET"}
			}
			mu.Lock()
			assert.Equal(t, want, methods, "status %d", status)
			mu.Unlock()
		}

		var sawPost bool
		srv := proxyTo(t, e.url, false, func(w http.ResponseWriter, r *http.Request) bool {
			sawPost = sawPost || r.Method == http.MethodPost
			return true
		})
		c := client(t, srv.URL, promquery.Options{DisablePOST: true})
		_, _, err := c.Vector(ctx30(t), `vector(1)`, time.Time{})
		require.NoError(t, err)
		assert.False(t, sawPost)
	})

	t.Run("TLSBearerAndHeaders", func(t *testing.T) {
		srv := proxyTo(t, e.url, true, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("X-Scope-OrgID") != "team-a" ||
				r.Header.Get("User-Agent") != "promflow-promquery" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return false
			}
			return true
		})
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
		ctx := ctx30(t)

		c := client(t, srv.URL, promquery.Options{
			HTTPConfig: config.HTTPClientConfig{
				BearerToken: "s3cret",
				TLSConfig:   config.TLSConfig{CAFile: caFile},
			},
			Headers: http.Header{"X-Scope-OrgID": {"team-a"}},
		})
		v, _, err := c.Vector(ctx, `promquery_test_gauge{tag="plain"}`, time.Time{})
		require.NoError(t, err)
		require.Len(t, v, 1)
		require.NoError(t, c.Ready(ctx))

		// Without the token: a 401 with the proxy's text body.
		noAuth := client(t, srv.URL, promquery.Options{
			HTTPConfig: config.HTTPClientConfig{TLSConfig: config.TLSConfig{CAFile: caFile}},
			Headers:    http.Header{"X-Scope-OrgID": {"team-a"}},
		})
		_, _, err = noAuth.Vector(ctx, `vector(1)`, time.Time{})
		var apiErr *promquery.APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
		assert.Contains(t, string(apiErr.Body), "unauthorized")

		// Without the CA the TLS handshake fails.
		noCA := client(t, srv.URL, promquery.Options{HTTPConfig: config.HTTPClientConfig{BearerToken: "s3cret"}})
		_, _, err = noCA.Vector(ctx, `vector(1)`, time.Time{})
		require.Error(t, err)
		require.NotErrorAs(t, err, &apiErr)
	})

	t.Run("MutualTLSFiles", func(t *testing.T) {
		// A gateway that demands a client certificate: CA, certificate and
		// key all come from files, as in a Prometheus configuration.
		dir := t.TempDir()
		caCert, caKey := newCert(t, "promquery test CA", nil, nil)
		clientCert, clientKey := newCert(t, "promquery test client", caCert, caKey)
		writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", clientCert.Raw)
		keyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
		require.NoError(t, err)
		writePEM(t, filepath.Join(dir, "client-key.pem"), "PRIVATE KEY", keyDER)

		u, err := url.Parse(e.url)
		require.NoError(t, err)
		srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(u))
		pool := x509.NewCertPool()
		pool.AddCert(caCert)
		srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
		srv.StartTLS()
		t.Cleanup(srv.Close)
		writePEM(t, filepath.Join(dir, "server-ca.pem"), "CERTIFICATE", srv.Certificate().Raw)
		ctx := ctx30(t)

		c := client(t, srv.URL, promquery.Options{HTTPConfig: config.HTTPClientConfig{TLSConfig: config.TLSConfig{
			CAFile:   filepath.Join(dir, "server-ca.pem"),
			CertFile: filepath.Join(dir, "client.pem"),
			KeyFile:  filepath.Join(dir, "client-key.pem"),
		}}})
		v, _, err := c.Vector(ctx, `promquery_test_gauge{tag="plain"}`, time.Time{})
		require.NoError(t, err)
		require.Len(t, v, 1)

		// Without the client certificate the handshake fails: an error,
		// but no *APIError since the server never answered.
		noCert := client(t, srv.URL, promquery.Options{HTTPConfig: config.HTTPClientConfig{TLSConfig: config.TLSConfig{
			CAFile: filepath.Join(dir, "server-ca.pem"),
		}}})
		_, _, err = noCert.Vector(ctx, `vector(1)`, time.Time{})
		require.Error(t, err)
		var apiErr *promquery.APIError
		require.NotErrorAs(t, err, &apiErr)
	})

	t.Run("BasicAuth", func(t *testing.T) {
		srv := proxyTo(t, e.url, false, func(w http.ResponseWriter, r *http.Request) bool {
			if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "pa:ss" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return false
			}
			return true
		})
		c := client(t, srv.URL, promquery.Options{HTTPConfig: config.HTTPClientConfig{
			BasicAuth: &config.BasicAuth{Username: "alice", Password: "pa:ss"},
		}})
		groups, _, err := c.Rules(context.Background())
		require.NoError(t, err)
		assert.Len(t, groups, 1)
	})

	t.Run("PathPrefix", func(t *testing.T) {
		// Prometheus behind a gateway under /prom/.
		u, err := url.Parse(e.url)
		require.NoError(t, err)
		rp := httputil.NewSingleHostReverseProxy(u)
		mux := http.NewServeMux()
		mux.Handle("/prom/", http.StripPrefix("/prom", rp))
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		c := client(t, srv.URL+"/prom/", promquery.Options{})
		ctx := ctx30(t)
		require.NoError(t, c.Healthy(ctx))
		vals, _, err := c.LabelValues(ctx, "job", nil, time.Time{}, time.Time{})
		require.NoError(t, err)
		assert.Contains(t, vals, model.LabelValue("app"))
	})
}

// newCert returns a new ECDSA certificate for cn, self-signed when parent
// is nil (a CA) and signed by parent otherwise (a client certificate).
func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		parent, parentKey = tmpl, key
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}
