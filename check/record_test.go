package check

import (
	"net/http"
	"strings"
	"testing"
)

func TestCurlLine(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "http://h:1/runsync?wait=5000", strings.NewReader(`{"input":{"prompt":"it's"}}`))
	req.Header.Set("Authorization", "Bearer sekret")
	req.Header.Set("Accept", "text/event-stream")
	got := curlLine(req, `{"input":{"prompt":"it's"}}`)
	want := `curl -sSN -X POST 'http://h:1/runsync?wait=5000' -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' -d '{"input":{"prompt":"it'\''s"}}'`
	if got != want {
		t.Errorf("curlLine:\n got %s\nwant %s", got, want)
	}
	get, _ := http.NewRequest(http.MethodGet, "http://h:1/health", nil)
	if got := curlLine(get, ""); got != `curl -sS 'http://h:1/health'` {
		t.Errorf("curlLine(GET) = %s", got)
	}
}
