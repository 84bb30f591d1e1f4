"""Convert a DeepSpec Eagle3 checkpoint (architectures ["Qwen3Eagle3Model"]: Qwen3 decoder layers
with q_norm/k_norm, fc over len(target_layer_ids) x hidden, full-vocab lm_head, no d2t/t2d) into
the layout each engine's Eagle3 loader reads. Facts from the pinned sources
(tests/fixtures/upstream_facts.json):

- Layer ids. DeepSpec hooks the *output* of target layer i. vLLM 0.33.0 records aux hidden state j
  after layer j-1 runs (the input of layer j), so vLLM ids are DeepSpec's + 1. SGLang 0.5.23's
  set_eagle3_layers_to_capture adds the 1 itself (it captures the input of layer id + 1), so SGLang
  ids are DeepSpec's as they are.
- fc width. Both loaders size fc as target hidden x len(eagle_aux_hidden_state_layer_ids) (3 only
  when no ids are given), so the ids are always written and must match fc's width.
- q_norm/k_norm. vLLM has a Qwen3 Eagle3 loader (Eagle3Qwen3ForCausalLM, Qwen3 decoder layers) that
  keeps them. SGLang's only dense Eagle3 loader is LlamaForCausalLMEagle3, which has none: a trained
  draft (non-identity norms) cannot load there faithfully and is refused; so is more than one layer.
- Gemma4 Eagle3 drafts: neither engine has a loader; refused.
Unverified on a GPU."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from ...agent.errors import InvalidTask, MissingInput, Unsupported

SOURCE_ARCHITECTURES = {"Qwen3Eagle3Model", "Eagle3DraftModel"}
UNCONVERTIBLE_ARCHITECTURES = {"Gemma4Eagle3Model"}
ENGINES = ("vllm", "sglang")
# The layer id each engine must be given for DeepSpec's target layer i (see the module docstring).
AUX_LAYER_ID_OFFSET = {"vllm": 1, "sglang": 0}
VLLM_ARCHITECTURE = "Eagle3Qwen3ForCausalLM"
SGLANG_ARCHITECTURE = "LlamaForCausalLMEagle3"
_SGLANG_CONFIG_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "rms_norm_eps",
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "max_position_embeddings",
    "vocab_size",
    "hidden_act",
    "torch_dtype",
    "dtype",
    "bos_token_id",
    "eos_token_id",
)
_LAYER = re.compile(r"^(?:model\.)?(?:layers\.(?P<index>\d+)|midlayer)\.(?P<rest>.+)$")
_TOP = {"fc.weight", "norm.weight", "lm_head.weight"}
_DROPPED = {"embed_tokens.weight"}  # the engines take the (frozen, shared) target embeddings
_QK_NORM = ("q_norm.weight", "k_norm.weight")


def split_key(key: str) -> tuple[int | None, str] | None:
    """(layer index, rest) for a decoder-layer weight, (None, name) for a top-level one, None for
    one the engines take from the target."""
    bare = key.removeprefix("model.")
    if bare in _DROPPED:
        return None
    if bare in _TOP:
        return None, bare
    m = _LAYER.match(key)
    if m:
        return int(m["index"] or 0), m["rest"]
    raise InvalidTask(f"params.draft: unexpected Eagle3 weight {key!r}; not a DeepSpec Eagle3 checkpoint?")


def rename(key: str, engine: str = "sglang") -> str | None:
    """The engine's name for a source weight; None for weights the engines take from the target."""
    parts = split_key(key)
    if parts is None:
        return None
    index, rest = parts
    if index is None:
        return rest
    return f"midlayer.{rest}" if engine == "sglang" else f"layers.{index}.{rest}"


def is_deepspec_eagle3(config: dict) -> bool:
    return bool(set(config.get("architectures") or []) & (SOURCE_ARCHITECTURES | UNCONVERTIBLE_ARCHITECTURES))


def engine_layer_ids(config: dict, engine: str) -> list[int]:
    ids = config.get("target_layer_ids")
    if not ids:
        raise InvalidTask(
            "params.draft: config.json has no target_layer_ids; not a DeepSpec Eagle3 checkpoint?"
        )
    return [int(i) + AUX_LAYER_ID_OFFSET[engine] for i in ids]


def convert_config(src: dict, engine: str) -> dict:
    eagle_config = {
        "eagle_aux_hidden_state_layer_ids": engine_layer_ids(src, engine),
        "use_aux_hidden_state": True,
    }
    common = {
        "draft_vocab_size": src["vocab_size"],
        "tie_word_embeddings": False,
        "eagle_config": eagle_config,
    }
    if engine == "vllm":
        out = {k: v for k, v in src.items() if k not in ("auto_map", "target_layer_ids")}
        out.update(architectures=[VLLM_ARCHITECTURE], model_type="qwen3", **common)
        out["target_hidden_size"] = src["hidden_size"]
        return out
    out = {k: src[k] for k in _SGLANG_CONFIG_KEYS if k in src}
    out.update(architectures=[SGLANG_ARCHITECTURE], model_type="llama", num_hidden_layers=1, **common)
    return out


def _check_source(src_dir: Path, engine: str) -> dict:
    if engine not in ENGINES:
        raise InvalidTask(f"backend: Eagle3 conversion targets {', '.join(ENGINES)}, not {engine}")
    cfg_path = src_dir / "config.json"
    if not cfg_path.exists():
        raise MissingInput(f"params.draft: no config.json in {src_dir}")
    config = json.loads(cfg_path.read_text())
    archs = set(config.get("architectures") or [])
    if archs & UNCONVERTIBLE_ARCHITECTURES:
        raise Unsupported(
            f"params.draft: {sorted(archs)} is a DeepSpec Gemma4 Eagle3 draft; vLLM 0.33.0 and SGLang 0.5.23 "
            "have no Gemma4 Eagle3 loader, so it cannot be served (evaluate it with the deepspec backend)"
        )
    if not archs & SOURCE_ARCHITECTURES:
        raise InvalidTask(
            f"params.draft: architectures {config.get('architectures')} is not a DeepSpec Eagle3 model"
        )
    return config


def convert(src_dir: str | Path, dst_dir: str | Path, engine: str = "vllm") -> dict:
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    config = _check_source(src_dir, engine)
    files = sorted(src_dir.glob("*.safetensors"))
    if not files:
        raise MissingInput(f"params.draft: no *.safetensors in {src_dir}")
    tensors: dict[str, np.ndarray] = {}
    dropped: list[str] = []
    layers: set[int] = set()
    for f in files:
        for key, value in load_file(str(f)).items():
            parts = split_key(key)
            if parts is None:
                dropped.append(key)
                continue
            if parts[0] is not None:
                layers.add(parts[0])
            if engine == "sglang" and key.endswith(_QK_NORM):
                if not np.allclose(value.astype(np.float32), 1.0):
                    raise Unsupported(
                        f"params.draft: {key} is trained (not an identity) but SGLang 0.5.23 loads Eagle3 drafts "
                        f"only as {SGLANG_ARCHITECTURE}, which has no q_norm/k_norm; serve this draft with vLLM "
                        f"({VLLM_ARCHITECTURE} keeps them)"
                    )
                dropped.append(key)
                continue
            tensors[rename(key, engine)] = value
    missing = _TOP - tensors.keys()
    if missing:
        raise InvalidTask(f"params.draft: checkpoint lacks {sorted(missing)}")
    if engine == "sglang" and len(layers) > 1:
        raise Unsupported(
            f"params.draft: {len(layers)} decoder layers; SGLang 0.5.23's {SGLANG_ARCHITECTURE} has one (midlayer)"
        )
    hidden, vocab = int(config["hidden_size"]), int(config["vocab_size"])
    ids = engine_layer_ids(config, engine)
    if tensors["fc.weight"].shape != (hidden, len(ids) * hidden):
        raise InvalidTask(
            f"params.draft: fc.weight is {list(tensors['fc.weight'].shape)} but {len(ids)} target layers x hidden "
            f"{hidden} needs [{hidden}, {len(ids) * hidden}] (the engines size fc from the layer ids)"
        )
    if tensors["lm_head.weight"].shape[0] != vocab:
        raise InvalidTask("params.draft: lm_head rows differ from vocab_size")
    if engine == "sglang":  # full draft vocabulary: draft id + d2t[id] = the same target id
        tensors["d2t"] = np.zeros(vocab, dtype=np.int64)
        tensors["t2d"] = np.ones(vocab, dtype=np.bool_)
    out_config = convert_config(config, engine)
    if engine == "vllm":
        out_config["num_hidden_layers"] = len(layers) or 1
    dst_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dst_dir / "model.safetensors"), metadata={"format": "pt"})
    (dst_dir / "config.json").write_text(json.dumps(out_config, indent=2) + "\n")
    return {"path": str(dst_dir), "engine": engine, "dropped": dropped, "tensors": sorted(tensors)}
