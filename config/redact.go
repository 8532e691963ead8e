package config

const redacted = "<redacted>"

// Redacted is the effective configuration for `vllm-worker config`: every section, keyed by
// snake_case field name, ready for encoding/json. Secrets show "<redacted>" when set and ""
// when not, never their value; a secret's value quoted in any other setting (a token pasted
// into VLLM_EXTRA_ARGS, say) is replaced as well. Durations are human strings ("50ms", "20m0s").
func (c *Config) Redacted() map[string]any {
	m, e, s, o, w, r := c.Model, c.Engine, c.Streaming, c.OpenAI, c.Worker, c.RunPod
	out := map[string]any{
		"model": map[string]any{
			"name":               m.Name,
			"revision":           m.Revision,
			"max_model_len":      m.MaxModelLen,
			"base_path":          m.BasePath,
			"load_format":        m.LoadFormat,
			"hf_token":           secret(m.HFToken),
			"quantization":       m.Quantization,
			"trust_remote_code":  m.TrustRemoteCode,
			"tokenizer":          m.Tokenizer,
			"tokenizer_revision": m.TokenizerRevision,
			"chat_template":      m.ChatTemplate,
			"served_model_names": c.ServedModelNames(),
		},
		"engine": map[string]any{
			"kind":                         e.Kind,
			"url":                          e.URL,
			"extra_args":                   e.ExtraArgs,
			"startup_timeout":              e.StartupTimeout.String(),
			"stall_timeout":                e.StallTimeout.String(),
			"restart":                      e.Restart,
			"shutdown_timeout":             e.ShutdownTimeout.String(),
			"tensor_parallel_size":         e.TensorParallelSize,
			"pipeline_parallel_size":       e.PipelineParallelSize,
			"distributed_executor_backend": e.DistributedExecutorBackend,
			"max_parallel_loading_workers": e.MaxParallelLoadingWorkers,
			"gpu_memory_utilization":       e.GPUMemoryUtilization,
			"disable_log_stats":            e.DisableLogStats,
			"enable_log_requests":          e.EnableLogRequests,
		},
		"streaming": map[string]any{
			"batch_size":     s.BatchSize,
			"min_batch_size": s.MinBatchSize,
			"growth_factor":  s.GrowthFactor,
			"max_wait":       s.MaxWait.String(),
		},
		"openai": map[string]any{
			"raw_output":                 o.RawOutput,
			"served_model_name_override": o.ServedModelNameOverride,
			"response_role":              o.ResponseRole,
		},
		"worker": map[string]any{
			"host":                  w.Host,
			"port":                  w.Port,
			"port_health":           w.PortHealth,
			"api_key":               secret(w.APIKey),
			"log_level":             w.LogLevel,
			"log_format":            w.LogFormat,
			"max_request_bytes":     w.MaxRequestBytes,
			"shutdown_grace":        w.ShutdownGrace.String(),
			"max_concurrency":       w.MaxConcurrency,
			"max_queue":             w.MaxQueue,
			"first_byte_timeout":    w.FirstByteTimeout.String(),
			"stream_idle_timeout":   w.StreamIdleTimeout.String(),
			"request_read_timeout":  w.RequestReadTimeout.String(),
			"client_write_timeout":  w.ClientWriteTimeout.String(),
			"job_store_max_bytes":   w.JobStoreMaxBytes,
			"webhook_allow_private": w.WebhookAllowPrivate,
			"cors_allowed_origins":  w.CORSAllowedOrigins,
			"tls_cert_file":         w.TLSCertFile,
			"tls_key_file":          w.TLSKeyFile,
		},
		"runpod": map[string]any{
			"webhook_get_job":     r.WebhookGetJob,
			"webhook_post_output": r.WebhookPostOutput,
			"webhook_post_stream": r.WebhookPostStream,
			"webhook_ping":        r.WebhookPing,
			"api_key":             secret(r.APIKey),
			"pod_id":              r.PodID,
			"endpoint_id":         r.EndpointID,
			"ping_interval":       r.PingInterval.String(),
		},
		"sim": map[string]any{
			"ttft":          c.Sim.TTFT.String(),
			"itl":           c.Sim.ITL.String(),
			"startup_delay": c.Sim.StartupDelay.String(),
			"max_num_seqs":  c.Sim.MaxNumSeqs,
			"max_model_len": c.Sim.MaxModelLen,
			"startup_exit":  c.Sim.StartupExit,
		},
		"warnings": c.Warnings,
	}
	return c.scrubAll(out).(map[string]any)
}

func secret(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// scrubAll replaces secret values inside every string of v (maps, string slices and strings),
// returning the same shape.
func (c *Config) scrubAll(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = c.scrubAll(x)
		}
		return t
	case []string:
		out := make([]string, len(t))
		for i, s := range t {
			out[i] = c.Scrub(s)
		}
		return out
	case string:
		if t == redacted {
			return t
		}
		return c.Scrub(t)
	}
	return v
}
