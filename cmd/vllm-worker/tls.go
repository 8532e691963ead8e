package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// loadTLS loads TLS_CERT_FILE and TLS_KEY_FILE and logs the certificate; a
// file that cannot be loaded is an exit with status 2, with a message naming it.
func (w *worker) loadTLS() (*tls.Config, error) {
	cfg := w.cfg.Worker
	c, leaf, err := serverTLS(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, &exitError{code: 2, msg: err.Error()}
	}
	ev := w.log.Info()
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		ev = w.log.Warn() // served all the same: clients refuse it, and say why
	}
	ev.Str("file", cfg.TLSCertFile).Str("subject", leaf.Subject.String()).Strs("dns_names", leaf.DNSNames).
		Time("not_before", leaf.NotBefore).Time("not_after", leaf.NotAfter).Msg("TLS certificate")
	return c, nil
}

// serverTLS is the TLS configuration of the API listener, from the PEM files of
// TLS_CERT_FILE (the certificate, then its intermediates) and TLS_KEY_FILE. An
// error names the file at fault, and the variable that named it. The leaf
// certificate is returned for the start-up log.
//
// TLS 1.2 is the oldest version accepted, and for it only forward-secret AEAD
// suites (Mozilla's "intermediate" profile); TLS 1.3's suites are Go's, all
// good. HTTP/2 is offered by ALPN (http.Server.ServeTLS adds "h2").
func serverTLS(certFile, keyFile string) (*tls.Config, *x509.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS_CERT_FILE: %w", err) // the error names the file
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS_KEY_FILE: %w", err)
	}
	leaf, err := parseCertificates(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS_CERT_FILE %s: %w", certFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS_KEY_FILE %s: not a PEM private key of the certificate in TLS_CERT_FILE %s: %w", keyFile, certFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
	return cfg, leaf, nil
}

// parseCertificates checks that certPEM holds one or more certificates, and
// nothing else, and returns the first: the leaf.
func parseCertificates(certPEM []byte) (*x509.Certificate, error) {
	var leaf *x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, certPEM = pem.Decode(certPEM)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE (the key goes in TLS_KEY_FILE)", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n, err)
		}
		if leaf == nil {
			leaf = c
		}
	}
	if leaf == nil {
		return nil, errors.New("no PEM certificate in it")
	}
	return leaf, nil
}
