"""The ``reference`` backend: real speculative decoding with tiny models on a CPU (or a GPU).

A tiny Qwen3 target trained here on synthetic task sets, answer regeneration, a target-hidden-
state cache, Eagle3 / DFlash / DSpark draft training, lossless speculative decoding, DeepSpec-style
acceptance metrics, an OpenAI-compatible server with vLLM metrics and an SPS(B) profiler. The task
entry points live in ``tasks.py``.
"""
