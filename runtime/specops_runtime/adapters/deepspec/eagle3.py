"""Convert a DeepSpec Eagle3 checkpoint (architectures ["Qwen3Eagle3Model"], full-vocab lm_head, no
d2t/t2d) to the SpecForge/SGLang Eagle3 layout (LlamaForCausalLMEagle3) that vLLM and SGLang load.

What the layout needs (engines.md, SpecForge export checks): fc.weight, norm.weight, lm_head.weight,
d2t, t2d, the single decoder layer under `midlayer.`, no embeddings (engines take the target's).
The draft vocabulary stays the full target vocabulary, so d2t is all zeros (draft id + 0 = target
id) and t2d all true. Qwen3 layers carry q_norm/k_norm, which the Llama Eagle3 layer lacks: they are
dropped only when they are identities (all ones), else conversion refuses. Unverified on a GPU."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from ...agent.errors import InvalidTask, MissingInput

SOURCE_ARCHITECTURES = {"Qwen3Eagle3Model", "Eagle3DraftModel"}
_CONFIG_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "rms_norm_eps",
    "rope_theta",
    "rope_scaling",
    "max_position_embeddings",
    "vocab_size",
    "hidden_act",
    "torch_dtype",
    "bos_token_id",
    "eos_token_id",
)
_LAYER = re.compile(r"^(?:model\.)?(?:layers\.0|midlayer)\.(.+)$")
_TOP = {"fc.weight", "norm.weight", "lm_head.weight"}
_DROPPED = {"embed_tokens.weight"}


def rename(key: str) -> str | None:
    """Target key for a source key; None for weights the engines take from the target."""
    bare = key.removeprefix("model.") if key.removeprefix("model.") in _TOP | _DROPPED else key
    if bare in _DROPPED:
        return None
    if bare in _TOP:
        return bare
    m = _LAYER.match(key)
    if m:
        return f"midlayer.{m.group(1)}"
    raise InvalidTask(f"params.draft: unexpected Eagle3 weight {key!r}; not a DeepSpec Eagle3 checkpoint?")


def is_deepspec_eagle3(config: dict) -> bool:
    return bool(set(config.get("architectures") or []) & SOURCE_ARCHITECTURES)


def convert_config(src: dict) -> dict:
    out = {k: src[k] for k in _CONFIG_KEYS if k in src}
    out.update(
        architectures=["LlamaForCausalLMEagle3"],
        model_type="llama",
        num_hidden_layers=1,
        tie_word_embeddings=False,
        draft_vocab_size=src["vocab_size"],
    )
    layers = src.get("target_layer_ids") or src.get("eagle_aux_hidden_state_layer_ids")
    if layers:
        out["eagle_config"] = {"eagle_aux_hidden_state_layer_ids": list(layers)}
    return out


def convert(src_dir: str | Path, dst_dir: str | Path) -> dict:
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    cfg_path = src_dir / "config.json"
    if not cfg_path.exists():
        raise MissingInput(f"params.draft: no config.json in {src_dir}")
    config = json.loads(cfg_path.read_text())
    if not is_deepspec_eagle3(config):
        raise InvalidTask(
            f"params.draft: architectures {config.get('architectures')} is not a DeepSpec Eagle3 model"
        )
    files = sorted(src_dir.glob("*.safetensors"))
    if not files:
        raise MissingInput(f"params.draft: no *.safetensors in {src_dir}")
    tensors: dict[str, np.ndarray] = {}
    dropped: list[str] = []
    for f in files:
        for key, value in load_file(str(f)).items():
            if key.endswith(("q_norm.weight", "k_norm.weight")):
                if not np.allclose(value.astype(np.float32), 1.0):
                    raise InvalidTask(
                        f"params.draft: {key} is not an identity; the Llama Eagle3 layout has no q/k norm"
                    )
                dropped.append(key)
                continue
            new = rename(key)
            if new is None:
                dropped.append(key)
            else:
                tensors[new] = value
    missing = _TOP - tensors.keys()
    if missing:
        raise InvalidTask(f"params.draft: checkpoint lacks {sorted(missing)}")
    vocab = int(config["vocab_size"])
    if tensors["lm_head.weight"].shape[0] != vocab:
        raise InvalidTask("params.draft: lm_head rows differ from vocab_size")
    tensors["d2t"] = np.zeros(vocab, dtype=np.int64)
    tensors["t2d"] = np.ones(vocab, dtype=np.bool_)
    dst_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dst_dir / "model.safetensors"), metadata={"format": "pt"})
    (dst_dir / "config.json").write_text(json.dumps(convert_config(config), indent=2) + "\n")
    return {"path": str(dst_dir), "dropped": dropped, "tensors": sorted(tensors)}
