package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/bwmarrin/discordgo"
)

// DefaultAPIURL is Discord's REST API base as discordgo addresses it.
var DefaultAPIURL = strings.TrimSuffix(discordgo.EndpointAPI, "/")

// apiRewrite sends discordgo's REST requests, which always name Discord's
// own API, to another base URL: a REST proxy, or the fake Discord of the
// tests. discordgo's endpoints are package variables; rewriting here keeps
// them untouched, so sessions with different bases can coexist.
type apiRewrite struct {
	next     http.RoundTripper
	from, to string // both with a trailing slash
}

func (a apiRewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	u := req.URL.String()
	if !strings.HasPrefix(u, a.from) {
		return a.next.RoundTrip(req)
	}
	nu, err := url.Parse(a.to + strings.TrimPrefix(u, a.from))
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.URL, req.Host = nu, nu.Host
	return a.next.RoundTrip(req)
}

// restClient returns the HTTP client for discordgo's REST calls.
func restClient(base *http.Client, apiURL string) *http.Client {
	c := *base
	if apiURL == "" || strings.TrimSuffix(apiURL, "/") == DefaultAPIURL {
		return &c
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = apiRewrite{next: next, from: discordgo.EndpointAPI, to: strings.TrimSuffix(apiURL, "/") + "/"}
	return &c
}
