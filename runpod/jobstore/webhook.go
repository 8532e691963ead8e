package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/vllm-worker/vllm-worker/internal/httpretry"
)

// Webhook delivers a /run job's final result to the job's webhook URL, which is
// outside input: anyone who may submit a job names it. So the URL is checked at
// submit (Check), the address actually dialed is checked again at delivery, so
// that a name that resolves to a private address is refused too, redirects are
// not followed, and logs and errors show the URL without user info or query.
type Webhook struct {
	retry        *httpretry.Client
	allowPrivate bool
}

// NewWebhook returns a deliverer. allowPrivate (WEBHOOK_ALLOW_PRIVATE) lets it
// reach loopback, private, link-local and other non-public addresses.
func NewWebhook(allowPrivate bool) *Webhook {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.ControlContext = func(_ context.Context, network, address string, _ syscall.RawConn) error {
			return checkDialAddress(address)
		}
	}
	t := &http.Transport{
		Proxy:                 nil, // a proxy would be the dialed address, hiding the real one
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
	}
	client := &http.Client{
		Transport: t,
		// A redirect could send the result (and its method and body, on a 307)
		// anywhere: it is answered as it is, which is not a success.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Webhook{
		retry: &httpretry.Client{
			HTTP: client, Attempts: 3, MinWait: time.Second, MaxWait: 2 * time.Second,
			AttemptTimeout: 10 * time.Second, MaxElapsed: time.Minute,
			Permanent: func(err error) bool { var r *dialRefused; return errors.As(err, &r) },
		},
		allowPrivate: allowPrivate,
	}
}

// Check vets a webhook URL at submit: an http or https URL with a host and no
// user info, whose host, when it is an address (or localhost), is one delivery
// would dial. A refusal is a *RequestError naming the webhook field.
func (h *Webhook) Check(raw string) error {
	bad := func(msg string) error { return &RequestError{Field: "webhook", Message: msg} }
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return bad("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("must be an http:// or https:// URL")
	case u.Host == "" || u.Hostname() == "":
		return bad("must have a host")
	case u.User != nil:
		return bad("must not carry user info (user:password@); put a secret in the query or path instead")
	case len(raw) > 2048:
		return bad("longer than 2048 bytes")
	}
	if h.allowPrivate {
		return nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return bad("must not be a loopback address (set WEBHOOK_ALLOW_PRIVATE=true to allow private targets)")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := forbiddenAddress(ip); why != "" {
			return bad("must not be a " + why + " address (set WEBHOOK_ALLOW_PRIVATE=true to allow private targets)")
		}
	}
	return nil
}

// checkDialAddress refuses to connect to an address a webhook must not reach:
// it runs on the resolved address of every connection, so DNS that points a
// public name at a private address gains nothing.
func checkDialAddress(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("webhook: unexpected dial address %q", address)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook: unexpected dial address %q", address)
	}
	if why := forbiddenAddress(ip); why != "" {
		return &dialRefused{addr: ip, why: why}
	}
	return nil
}

// dialRefused is a webhook connection refused by the address check.
type dialRefused struct {
	addr netip.Addr
	why  string
}

func (e *dialRefused) Error() string {
	return "refusing to connect to " + e.addr.String() + ", a " + e.why +
		" address (set WEBHOOK_ALLOW_PRIVATE=true to allow private targets)"
}

var (
	thisNetwork  = netip.MustParsePrefix("0.0.0.0/8")     // "this network": 0.x.x.x reaches the host itself on Linux
	sharedSpace  = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT; cloud metadata lives here on some clouds
	benchmarking = netip.MustParsePrefix("198.18.0.0/15")
	nat64        = netip.MustParsePrefix("64:ff9b::/96") // IPv6 translations of IPv4 addresses
)

// forbiddenAddress says what kind of non-public address ip is, or "" for a
// public one.
func forbiddenAddress(ip netip.Addr) string {
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLinkLocalUnicast():
		return "link-local (cloud metadata)"
	case ip.IsMulticast(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "multicast or broadcast"
	case ip.IsPrivate(), sharedSpace.Contains(ip), benchmarking.Contains(ip):
		return "private"
	case thisNetwork.Contains(ip), !ip.IsGlobalUnicast():
		return "non-public"
	}
	return ""
}

// Deliver posts the job's snapshot as JSON, tried up to three times on network
// errors, 429 and 5xx (about 1 s, then 2 s apart). A refused address, a
// redirect and any other answer are final.
func (h *Webhook) Deliver(ctx context.Context, rawURL string, result Snapshot) error {
	body, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("encode webhook body: %w", err)
	}
	return h.retry.Post(ctx, rawURL, RedactURL(rawURL), body, http.Header{"Content-Type": {"application/json"}})
}

// RedactURL is u as logs and errors may show it: scheme, host and path, without
// user info, query or fragment, which may hold secrets.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(an unparsable URL)"
	}
	return (&url.URL{Scheme: p.Scheme, Host: p.Host, Path: p.Path}).String()
}
