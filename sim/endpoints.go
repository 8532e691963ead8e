package sim

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vllm-worker/vllm-worker/openai"
)

// modelList is vLLM's /v1/models response (specs/vllm.md 1.3).
type modelList struct {
	Object string      `json:"object"`
	Data   []modelCard `json:"data"`
}

type modelCard struct {
	ID          string       `json:"id"`
	Object      string       `json:"object"`
	Created     int64        `json:"created"`
	OwnedBy     string       `json:"owned_by"`
	Root        string       `json:"root"`
	Parent      null         `json:"parent"`
	MaxModelLen int          `json:"max_model_len"`
	Permission  []permission `json:"permission"`
}

type permission struct {
	ID                 string `json:"id"`
	Object             string `json:"object"`
	Created            int64  `json:"created"`
	AllowCreateEngine  bool   `json:"allow_create_engine"`
	AllowSampling      bool   `json:"allow_sampling"`
	AllowLogprobs      bool   `json:"allow_logprobs"`
	AllowSearchIndices bool   `json:"allow_search_indices"`
	AllowView          bool   `json:"allow_view"`
	AllowFineTuning    bool   `json:"allow_fine_tuning"`
	Organization       string `json:"organization"`
	Group              null   `json:"group"`
	IsBlocking         bool   `json:"is_blocking"`
}

func (s *Server) handleModels(w http.ResponseWriter) {
	now := time.Now().Unix()
	var id [16]byte
	binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(id[8:], rand.Uint64())
	card := modelCard{
		ID: s.o.Model, Object: "model", Created: now, OwnedBy: "vllm", Root: s.o.Root, MaxModelLen: s.o.MaxModelLen,
		Permission: []permission{{
			ID: "modelperm-" + hex.EncodeToString(id[:]), Object: "model_permission", Created: now,
			AllowSampling: true, AllowLogprobs: true, AllowView: true, Organization: "*",
		}},
	}
	b, _ := json.Marshal(modelList{Object: "list", Data: []modelCard{card}}) // cannot fail
	writeJSON(w, http.StatusOK, b)
}

// tokenized is vLLM's /tokenize response.
type tokenized struct {
	Count       int      `json:"count"`
	MaxModelLen int      `json:"max_model_len"`
	Tokens      []uint64 `json:"tokens"`
	TokenStrs   []string `json:"token_strs"` // null unless return_token_strs
}

// handleTokenize serves /tokenize with the simulated tokenizer: one token per
// whitespace-separated word of "prompt" or of the "messages" contents.
func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) {
	body, e := readJSONBody(w, r)
	var f openai.Fields
	if e == nil {
		f, e = openai.Peek(body)
	}
	if e == nil {
		e = s.checkModel(f)
	}
	var words []string
	add := func(text string) { words = append(words, strings.Fields(text)...) }
	if e == nil {
		root := gjson.ParseBytes(body)
		switch p, m := root.Get("prompt"), root.Get("messages"); {
		case p.Type == gjson.String:
			add(p.Str)
		case m.Exists():
			e = parseMessages(m, add)
		default:
			e = openai.NewError(http.StatusBadRequest, "prompt: Field required (a string, or messages)").WithParam("prompt")
		}
	}
	if e != nil {
		s.reject(w, r, e)
		return
	}
	resp := tokenized{Count: len(words), MaxModelLen: s.o.MaxModelLen, Tokens: make([]uint64, len(words))}
	for i, word := range words {
		h := uint64(fnvOffset)
		for j := 0; j < len(word); j++ {
			h = (h ^ uint64(word[j])) * fnvPrime
		}
		resp.Tokens[i] = 100 + h%32000 // a plausible vocabulary id
	}
	if root := gjson.GetBytes(body, "return_token_strs"); root.Type == gjson.True {
		resp.TokenStrs = words
		if words == nil {
			resp.TokenStrs = []string{}
		}
	}
	b, _ := json.Marshal(resp) // cannot fail
	writeJSON(w, http.StatusOK, b)
}
