package main

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
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
)

// testCerts are a throwaway CA and a server certificate it signed for
// 127.0.0.1, ::1 and localhost, made at run time and written as PEM files to a
// temporary directory: no key is ever committed.
type testCerts struct {
	CA, Cert, Key string // file paths
	Pool          *x509.CertPool
}

func newTestCerts(t *testing.T) testCerts {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vllm-worker test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c := testCerts{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"),
		Pool: x509.NewCertPool()}
	c.Pool.AddCert(ca)
	writePEM(t, c.CA, "CERTIFICATE", caDER)
	writePEM(t, c.Cert, "CERTIFICATE", leafDER)
	writePEM(t, c.Key, "PRIVATE KEY", marshalKey(t, key))
	return c
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func marshalKey(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsClient trusts the test CA and speaks HTTP/2 when h2, else HTTP/1.1 only.
func tlsClient(pool *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(!h2)
	tr.Protocols.SetHTTP2(h2)
	return &http.Client{Transport: tr}
}

// protoRecorder remembers the protocol of each response.
type protoRecorder struct {
	http.RoundTripper
	protos []string
}

func (p *protoRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.RoundTripper.RoundTrip(r)
	if err == nil {
		p.protos = append(p.protos, resp.Proto)
	}
	return resp, err
}

// TestTLS runs a worker with TLS_CERT_FILE and TLS_KEY_FILE (a test CA's
// certificate), and drives its HTTPS API with go-openai over HTTP/2 and
// HTTP/1.1 (streams flushed event by event) and with the official openai npm
// SDK (trusting the CA through NODE_EXTRA_CA_CERTS), CORS included; PORT_HEALTH
// stays plain HTTP.
func TestTLS(t *testing.T) {
	certs := newTestCerts(t)
	healthPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	const (
		key    = "tls-test-key"
		origin = "https://app.example"
		itl    = 20 * time.Millisecond
	)
	w := startWorkerAsync(t, "TLS_CERT_FILE="+certs.Cert, "TLS_KEY_FILE="+certs.Key,
		"PORT_HEALTH="+strconv.Itoa(healthPort), "API_KEY="+key, "CORS_ALLOWED_ORIGINS="+origin,
		"SIM_ITL_MS="+strconv.Itoa(int(itl/time.Millisecond)), "DEFAULT_BATCH_SIZE=1", "REQUEST_READ_TIMEOUT_SECONDS=1")
	if !strings.HasPrefix(w.URL, "https://127.0.0.1:") {
		t.Fatalf("the API listens at %s; want https://127.0.0.1:PORT", w.URL)
	}
	healthURL := "http://127.0.0.1:" + strconv.Itoa(healthPort)
	w.Log.waitLine(t, time.Second, func(l map[string]any) bool {
		return l["message"] == "listening" && l["listener"] == "health" && l["scheme"] == "http"
	})
	waitReadyWith(t, tlsClient(certs.Pool, false), w.URL, 30*time.Second, w.Log)

	t.Run("PORT_HEALTH is plain HTTP", func(t *testing.T) {
		resp, err := http.Get(healthURL + "/ping")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /ping on PORT_HEALTH: %d; want 200", resp.StatusCode)
		}
	})
	t.Run("plain HTTP on PORT is refused", func(t *testing.T) {
		resp, err := http.Get(strings.Replace(w.URL, "https:", "http:", 1) + "/health")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
			t.Errorf("got %d %q; want net/http's 400 for HTTP to an HTTPS server", resp.StatusCode, body)
		}
	})
	t.Run("a client that does not trust the CA", func(t *testing.T) {
		_, err := http.Get(w.URL + "/health")
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("got %v; want x509.UnknownAuthorityError", err)
		}
	})
	t.Run("a handshake that never comes is cut after REQUEST_READ_TIMEOUT_SECONDS", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(w.URL, "https://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		_ = conn.SetReadDeadline(start.Add(10 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("read %d bytes, %v; want the worker to close the connection", n, err)
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
			t.Errorf("closed after %v; want about 1s", d)
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(w.URL, "https://"),
			&tls.Config{RootCAs: certs.Pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})

	for _, h2 := range []bool{true, false} {
		name, wantProto := "HTTP/1.1", "HTTP/1.1"
		if h2 {
			name, wantProto = "HTTP/2", "HTTP/2.0"
		}
		t.Run("go-openai streams a chat over "+name, func(t *testing.T) {
			hc := tlsClient(certs.Pool, h2)
			rec := &protoRecorder{RoundTripper: hc.Transport}
			hc.Transport = rec
			cfg := goopenai.DefaultConfig(key)
			cfg.BaseURL = w.URL + "/v2/ep/openai/v1"
			cfg.HTTPClient = hc
			client := goopenai.NewClientWithConfig(cfg)
			const tokens = 10
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stream, err := client.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{
				Model: testModel, MaxCompletionTokens: tokens, Stream: true,
				Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Why is the sky blue?"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Close()
			var arrivals []time.Time
			var text strings.Builder
			for {
				chunk, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
					arrivals = append(arrivals, time.Now())
					text.WriteString(chunk.Choices[0].Delta.Content)
				}
			}
			if len(arrivals) != tokens || text.Len() == 0 {
				t.Fatalf("got %d content chunks (%q); want %d", len(arrivals), text.String(), tokens)
			}
			// Each event is flushed through TLS as it comes (DEFAULT_BATCH_SIZE=1):
			// the chunks arrive about SIM_ITL_MS apart, not in one burst at the end.
			apart := 0
			for i := 1; i < len(arrivals); i++ {
				if arrivals[i].Sub(arrivals[i-1]) >= itl/2 {
					apart++
				}
			}
			if apart < (tokens-1)/2 {
				t.Errorf("only %d of %d chunks arrived %v or more after the previous one: the stream is not flushed per event", apart, tokens-1, itl/2)
			}
			if len(rec.protos) != 1 || rec.protos[0] != wantProto {
				t.Errorf("responses over %v; want %s", rec.protos, wantProto)
			}
		})
	}

	t.Run("the API key is still checked", func(t *testing.T) {
		resp, err := tlsClient(certs.Pool, true).Get(w.URL + "/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /v1/models without the key: %d; want 401", resp.StatusCode)
		}
	})

	t.Run("openai npm SDK over TLS, and CORS", func(t *testing.T) {
		node := nodeSDK(t)
		node.run(t, []string{
			"NODE_EXTRA_CA_CERTS=" + certs.CA,
			"VLLM_WORKER_BASE_URL=" + w.URL + "/openai/v1",
			"VLLM_WORKER_MODEL=" + testModel,
			"VLLM_WORKER_API_KEY=" + key,
			"VLLM_WORKER_ORIGIN=" + origin,
		}, "sdk.test.mjs", "cors.test.mjs")
	})
}

// TestTLSFiles: a certificate or key that cannot be loaded stops the worker
// before anything starts, with status 2 and a message naming the file.
func TestTLSFiles(t *testing.T) {
	certs := newTestCerts(t)
	other := newTestCerts(t) // a key that is not the certificate's
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name, cert, key string
		want            []string // in the message
	}{
		{"missing certificate", missing, certs.Key, []string{"TLS_CERT_FILE", missing, "no such file"}},
		{"missing key", certs.Cert, missing, []string{"TLS_KEY_FILE", missing, "no such file"}},
		{"certificate not PEM", garbage, certs.Key, []string{"TLS_CERT_FILE " + garbage, "no PEM certificate"}},
		{"key in the certificate's place", certs.Key, certs.Key, []string{"TLS_CERT_FILE " + certs.Key, `"PRIVATE KEY", not a CERTIFICATE`}},
		{"key not PEM", certs.Cert, garbage, []string{"TLS_KEY_FILE " + garbage}},
		{"key of another certificate", certs.Cert, other.Key, []string{"TLS_KEY_FILE " + other.Key, "private key does not match public key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), nil, baseEnv("TLS_CERT_FILE="+tt.cert, "TLS_KEY_FILE="+tt.key), &out, &out)
			if exitCode(err) != 2 {
				t.Fatalf("run: %v (exit %d); want exit 2\n%s", err, exitCode(err), out.String())
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
			if strings.Contains(out.String(), "listening") {
				t.Errorf("the worker listened before it failed:\n%s", out.String())
			}
		})
	}
	t.Run("one without the other", func(t *testing.T) {
		var out bytes.Buffer
		err := run(context.Background(), nil, baseEnv("TLS_CERT_FILE="+certs.Cert), &out, &out)
		if exitCode(err) != 2 || !strings.Contains(out.String(), "TLS_KEY_FILE: not set, but TLS_CERT_FILE is") {
			t.Errorf("run: %v (exit %d); want exit 2 naming TLS_KEY_FILE\n%s", err, exitCode(err), out.String())
		}
	})
}
