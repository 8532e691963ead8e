//go:build !linux

package engine

import "net/http"

// platformTransport is the standard Transport where the direct one (Linux) is
// not built.
func platformTransport(_ Options, std *http.Transport) http.RoundTripper { return std }

// rewindsBody is false: std needs GetBody to send a request again.
func rewindsBody(http.RoundTripper) bool { return false }
