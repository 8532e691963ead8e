package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestFloorRelays checks that the Go floor relays a chat to the engine and its
// answer back as they are, and refuses what it does not relay.
func TestFloorRelays(t *testing.T) {
	const answer = `{"object":"chat.completion"}`
	var got []byte
	eng := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	defer eng.Close()
	floor := httptest.NewServer(floorHandler(eng.URL))
	defer floor.Close()

	body := chatBody()
	resp, err := http.Post(floor.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(out) != answer || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("relayed answer = %d %q (%s), want 200 %q", resp.StatusCode, out, resp.Header.Get("Content-Type"), answer)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("the engine got %q, want %q", got, body)
	}

	resp, err = http.Get(floor.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /v1/models = %d, want 400", resp.StatusCode)
	}
}
