package httpedge_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/httpedge"
)

func TestOriginPolicyMatch(t *testing.T) {
	p, err := httpedge.ParseOrigins(append([]string{" https://app.example.com ", "*.corp.example:8443", ""}, httpedge.LocalDevOrigins...))
	require.NoError(t, err)
	for origin, want := range map[string]bool{
		"http://localhost:3000":         true,
		"http://localhost":              true,
		"http://127.0.0.1:8080":         true,
		"http://[::1]:3000":             true,
		"https://localhost:3000":        false, // the dev list is http only
		"https://app.example.com":       true,
		"https://app.example.com:443":   true,
		"http://app.example.com":        false,
		"https://app.example.com:8443":  false,
		"https://a.corp.example:8443":   true,
		"http://a.corp.example:8443":    true,
		"https://a.corp.example":        false,
		"http://evil.example":           false,
		"http://localhost.evil.example": false,
		"null":                          false,
		"":                              false,
		"file://":                       false,
	} {
		assert.Equal(t, want, p.Match(origin), origin)
	}
	anyP, err := httpedge.ParseOrigins([]string{"*"})
	require.NoError(t, err)
	assert.True(t, anyP.Match("http://evil.example"))
	assert.True(t, anyP.AllowsAny())
	assert.False(t, httpedge.OriginPolicy{}.Match("http://localhost:3000"), "the zero policy allows nothing")
}

func TestParseOriginsRejectsMalformed(t *testing.T) {
	for _, e := range []string{"ftp://x", "http://", "http://a/b", "http://a:port", "http://[a", "a b"} {
		_, err := httpedge.ParseOrigins([]string{e})
		assert.Error(t, err, e)
	}
}

func TestAllowsSameOriginAndNoOrigin(t *testing.T) {
	var p httpedge.OriginPolicy
	r := httptest.NewRequest(http.MethodGet, "http://svc:8005/", nil)
	assert.True(t, p.Allows(r), "no Origin")
	r.Header.Set("Origin", "http://svc:8005")
	assert.True(t, p.Allows(r), "same origin")
	r.Header.Set("Origin", "http://other:8005")
	assert.False(t, p.Allows(r))
}

func TestSplitList(t *testing.T) {
	assert.Equal(t, []string{"a", "b c"}, httpedge.SplitList(" a,, b c ,"))
	assert.Nil(t, httpedge.SplitList(""))
}
