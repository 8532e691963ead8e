package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Models caches the engine's served model ids (GET /v1/models), so that a request
// for an unknown model is answered without a round trip. LoRA adapters loaded at run
// time are picked up: a miss refreshes the list, at most once per MinRefresh.
type Models struct {
	client     *Client
	fallback   []string
	MinRefresh time.Duration // zero means one second

	mu      sync.Mutex
	ids     []string
	fetched time.Time
}

// NewModels returns a cache over client. fallback is used while the engine cannot
// be asked (the configured served names).
func NewModels(client *Client, fallback []string) *Models {
	return &Models{client: client, fallback: fallback}
}

// Has reports whether id is served. When the engine cannot be asked it trusts the
// configured names, and when it has none it lets the engine decide.
func (m *Models) Has(ctx context.Context, id string) bool {
	m.mu.Lock()
	ids, fetched := m.ids, m.fetched
	m.mu.Unlock()
	if slices.Contains(ids, id) {
		return true
	}
	refresh := m.MinRefresh
	if refresh == 0 {
		refresh = time.Second
	}
	if ids == nil || time.Since(fetched) >= refresh {
		if fresh, err := m.Refresh(ctx); err == nil {
			return slices.Contains(fresh, id)
		}
	}
	if ids != nil {
		return false
	}
	return len(m.fallback) == 0 || slices.Contains(m.fallback, id)
}

// IDs returns the cached ids, or the configured names before the first fetch.
func (m *Models) IDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ids != nil {
		return m.ids
	}
	return m.fallback
}

// Refresh asks the engine for its model list.
func (m *Models) Refresh(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := m.client.Do(ctx, http.MethodGet, "/v1/models", nil, "")
	if err != nil {
		return nil, fmt.Errorf("list engine models: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list engine models: status %d", resp.StatusCode)
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&list); err != nil {
		return nil, fmt.Errorf("decode engine models: %w", err)
	}
	ids := make([]string, 0, len(list.Data))
	for _, d := range list.Data {
		ids = append(ids, d.ID)
	}
	m.mu.Lock()
	m.ids, m.fetched = ids, time.Now()
	m.mu.Unlock()
	return ids, nil
}

// First is the default model: the first served id.
func (m *Models) First() string {
	ids := m.IDs()
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}
