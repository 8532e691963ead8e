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
)

// modelList is vLLM's /v1/models response (ModelList in vLLM's
// vllm/entrypoints/openai/protocol.py).
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

// tokenizeRequest is vLLM's TokenizeRequest: the union of TokenizeCompletionRequest
// and TokenizeChatRequest, both labelled by their wrap validator in pydantic's loc.
func tokenizeRequest() validator {
	const label = "function-wrap[__log_extra_fields__()]"
	common := []field{
		{name: "model", check: nullable(vStr)},
		{name: "add_special_tokens", check: vBool},
		{name: "return_token_strs", check: nullable(vBool)},
	}
	completion := append([]field{{name: "prompt", required: true, check: vStr}}, common...)
	chat := append([]field{{name: "messages", required: true, check: vList(chatMessage, 0)}}, common...)
	return union(branch{label, model(completion...)}, branch{label, model(chat...)})
}

// handleTokenize serves /tokenize with the simulated tokenizer: one token per
// whitespace-separated word of "prompt" or of the "messages" contents.
func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) {
	o, root, e := readBody(w, r)
	if e == nil {
		var c checker
		if !s.models.tokenize(&c, root, []any{"body"}) {
			e = errValidation(c.errs)
		}
	}
	if e == nil {
		e = s.checkModel(o)
	}
	if e != nil {
		s.reject(w, r, e)
		return
	}
	var words []string
	add := func(text string) { words = append(words, strings.Fields(text)...) }
	if p := o.get("prompt"); p.Type == gjson.String {
		add(p.Str)
	} else {
		o.get("messages").ForEach(func(_, m gjson.Result) bool { messageText(m, add); return true })
	}
	resp := tokenized{Count: len(words), MaxModelLen: s.o.MaxModelLen, Tokens: make([]uint64, len(words))}
	for i, word := range words {
		h := uint64(fnvOffset)
		for j := 0; j < len(word); j++ {
			h = (h ^ uint64(word[j])) * fnvPrime
		}
		resp.Tokens[i] = 100 + h%32000 // a plausible vocabulary id
	}
	if strs, _ := boolOf(o.get("return_token_strs")); strs {
		resp.TokenStrs = words
		if words == nil {
			resp.TokenStrs = []string{}
		}
	}
	b, _ := json.Marshal(resp) // cannot fail
	writeJSON(w, http.StatusOK, b)
}
