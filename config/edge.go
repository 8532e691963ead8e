package config

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The worker's edge towards browsers and the network: CORS_ALLOWED_ORIGINS and the
// TLS_CERT_FILE/TLS_KEY_FILE pair. Load checks their form only; the certificate files
// are read when the worker starts to listen (config does no I/O).

// corsOrigins checks CORS_ALLOWED_ORIGINS, a comma-separated list of origins, and
// returns it normalised: each origin "*" or scheme://host[:port] in lower case, the
// scheme's default port dropped (a browser never sends it), without duplicates. nil
// (CORS off) when the value is empty.
func (k *checker) corsOrigins(value string) []string {
	var out []string
	for part := range strings.SplitSeq(value, ",") {
		o := strings.TrimSpace(part)
		if o == "" {
			continue
		}
		norm, reason := normalOrigin(o)
		if reason != "" {
			// The one origin, not the whole list: a long list would be cut short.
			k.problems = append(k.problems, "CORS_ALLOWED_ORIGINS: "+k.quote(o)+" is not an origin: "+reason)
			continue
		}
		if !slices.Contains(out, norm) {
			out = append(out, norm)
		}
	}
	if len(out) > 1 && slices.Contains(out, "*") {
		k.warn("CORS_ALLOWED_ORIGINS has * and other origins: * allows every origin, so the others change nothing")
		return []string{"*"}
	}
	return out
}

// normalOrigin returns o as a browser sends it in an Origin header, or why it
// cannot be one.
func normalOrigin(o string) (string, string) {
	const form = "want * or scheme://host[:port], such as https://app.example.com or http://localhost:5173"
	if o == "*" {
		return o, ""
	}
	if strings.Contains(o, "*") {
		return "", "no wildcards inside an origin; * alone allows every origin"
	}
	for _, r := range o {
		if r > 0x7e || r < 0x21 {
			return "", "only printable ASCII; write an international host name in its xn-- form"
		}
	}
	u, err := url.Parse(o)
	switch {
	case err != nil || u.Scheme == "" || u.Opaque != "" || u.Host == "":
		return "", form
	case u.User != nil:
		return "", "no user info in an origin"
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.HasSuffix(o, "#"):
		return "", "an origin has no path, query or fragment, not even a trailing /: " + form
	case u.Hostname() == "":
		return "", form
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", "the port must be 1 to 65535"
		}
		if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
			port = ""
		}
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, ""
}

// tlsFiles checks that TLS_CERT_FILE and TLS_KEY_FILE come as a pair.
func (k *checker) tlsFiles(cert, key string) (string, string) {
	cert, key = strings.TrimSpace(cert), strings.TrimSpace(key)
	switch {
	case cert != "" && key == "":
		k.problems = append(k.problems, "TLS_KEY_FILE: not set, but TLS_CERT_FILE is (set both to serve HTTPS on PORT, or neither)")
	case cert == "" && key != "":
		k.problems = append(k.problems, "TLS_CERT_FILE: not set, but TLS_KEY_FILE is (set both to serve HTTPS on PORT, or neither)")
	}
	return cert, key
}
