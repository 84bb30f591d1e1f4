"""Draft configuration, shared-weight wiring and HF-layout save/load for every draft method.

Drafts keep only their own trainable weights on disk; the embeddings and LM head are the frozen
target's and are attached at load time (as DeepSpec's drafts share them during training).
config.json uses DeepSpec's architecture names and field names (block_size, target_layer_ids,
mask_token_id, num_anchors, markov_rank, enable_confidence_head; ttt_length for Eagle3).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

METHODS = ("eagle3", "dflash", "dspark")
ARCHITECTURES = {"eagle3": "Qwen3Eagle3Model", "dflash": "Qwen3DSparkModel", "dspark": "Qwen3DSparkModel"}
WEIGHTS_FILE = "model.safetensors"


@dataclass
class DraftConfig:
    method: str
    hidden_size: int
    num_attention_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    target_layer_ids: list[int]
    num_hidden_layers: int = 1
    block_size: int = 4
    mask_token_id: int = 3
    num_anchors: int = 8
    markov_rank: int = 0
    enable_confidence_head: bool = False
    ttt_length: int = 4
    rope_theta: float = 1_000_000.0
    target_model_name_or_path: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method: {self.method!r} is not one of {', '.join(METHODS)}")
        if self.block_size < 1:
            raise ValueError("blockSize: must be >= 1")
        if self.num_hidden_layers < 1:
            raise ValueError("numLayers: must be >= 1")
        if not self.target_layer_ids:
            raise ValueError("targetLayerIds: must name at least one layer")

    @property
    def feature_size(self) -> int:
        return len(self.target_layer_ids) * self.hidden_size

    def to_json(self) -> dict:
        body = asdict(self)
        body["architectures"] = [ARCHITECTURES[self.method]]
        body["model_type"] = "qwen3"
        return body

    @classmethod
    def from_json(cls, body: dict) -> DraftConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in names})


@dataclass
class SharedWeights:
    """The frozen target's token embedding and LM head (the draft never trains them)."""

    embed: torch.Tensor  # [V, H]
    lm_head: torch.Tensor  # [V, H]

    @classmethod
    def from_target(cls, model) -> SharedWeights:
        return cls(
            model.get_input_embeddings().weight.detach(), model.get_output_embeddings().weight.detach()
        )


def target_rope_theta(model_config) -> float:
    rope = getattr(model_config, "rope_parameters", None) or {}
    return float(rope.get("rope_theta", getattr(model_config, "rope_theta", 1_000_000.0)))


def draft_config_for_target(method: str, target_config, layer_ids: list[int], **overrides) -> DraftConfig:
    """A draft shaped after the target (same width and head layout) for the given method."""
    heads = target_config.num_attention_heads
    base = dict(
        method=method,
        hidden_size=target_config.hidden_size,
        num_attention_heads=heads,
        head_dim=getattr(target_config, "head_dim", None) or target_config.hidden_size // heads,
        intermediate_size=target_config.intermediate_size,
        vocab_size=target_config.vocab_size,
        target_layer_ids=list(layer_ids),
        rope_theta=target_rope_theta(target_config),
    )
    if method == "dspark":
        base.update(markov_rank=16, enable_confidence_head=True)
    base.update({k: v for k, v in overrides.items() if v is not None})
    if method == "dflash":  # DeepSpec's DFlash = DSpark without the Markov head and confidence loss
        base.update(markov_rank=0, enable_confidence_head=False)
    if method == "eagle3":
        base["num_hidden_layers"] = 1
    return DraftConfig(**base)


def build_draft(config: DraftConfig, shared: SharedWeights):
    if config.method == "eagle3":
        from .eagle3 import Eagle3Draft

        return Eagle3Draft(config, shared)
    from .dspark import DSparkDraft

    return DSparkDraft(config, shared)


def save_draft(model, directory: Path) -> Path:
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(model.config.to_json(), indent=2))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    return directory


def load_draft(directory: Path, shared: SharedWeights, device: torch.device):
    from safetensors.torch import load_file

    config = DraftConfig.from_json(json.loads((Path(directory) / "config.json").read_text()))
    model = build_draft(config, shared)
    model.load_state_dict(load_file(str(Path(directory) / WEIGHTS_FILE)))
    return model.to(device).eval()
