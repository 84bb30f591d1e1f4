"""Backends that drive external tools: DeepSpec (training, offline eval, data) and the vLLM and SGLang
engines (serving). Each exposes the same functions as the reference backend: fn(params, ctx)."""
