"""The target model: a tiny Qwen3 trained here, or any Hugging Face Qwen3-style checkpoint.

The tiny target uses transformers' own ``Qwen3Config`` / ``Qwen3ForCausalLM`` and is saved with
``save_pretrained`` (config.json + model.safetensors), so ``load_target`` is the same
``from_pretrained`` path a real checkpoint takes. Trained targets are cached on disk under a hash
of their recipe, so repeated runs and tests reuse them.

Layer ids: ``targetLayerIds`` index decoder-layer outputs, 0-based (id i = output of layer i).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import data
from .tokenizer import EOS, PAD, TinyTokenizer, build_tiny_tokenizer, load_tokenizer

RECIPE_VERSION = 3  # bump whenever the data generators or training code change
TINY_TARGET_NAME = "specops/tiny-qwen3"


@dataclass(frozen=True)
class TinyTargetRecipe:
    """Everything that determines the tiny target's weights (its hash keys the on-disk cache)."""

    hidden_size: int = 64
    num_layers: int = 3
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 192
    train_steps: int = 500
    batch_size: int = 48
    learning_rate: float = 4e-3
    samples_per_task: int = 4000
    seed: int = 0

    def key(self) -> str:
        blob = json.dumps({"version": RECIPE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_cache_root() -> Path:
    root = os.environ.get("SPECOPS_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "specops"


def tiny_qwen3_config(recipe: TinyTargetRecipe, vocab_size: int):
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_kv_heads,
        head_dim=recipe.hidden_size // recipe.num_heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )


def encode_conversation(tokenizer: TinyTokenizer, prompt: str, answer: str) -> tuple[list[int], int]:
    """Token ids of prompt + answer + <eos>, and the index where the answer starts."""
    prompt_ids = tokenizer.chat_prompt([{"role": "user", "content": prompt}])
    return prompt_ids + tokenizer.encode(answer) + [EOS], len(prompt_ids)


def pad_batch(sequences: list[list[int]], pad: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [B, T] and attention mask (right padding keeps causal positions intact)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids, mask


def train_tiny_target(
    recipe: TinyTargetRecipe,
    out_dir: Path,
    report: Callable[..., None] | None = None,
) -> Path:
    """Train the tiny target on ground-truth synthetic data and save it in HF layout."""
    from transformers import Qwen3ForCausalLM

    torch.manual_seed(recipe.seed)
    tokenizer = build_tiny_tokenizer(data.vocabulary_words())
    model = Qwen3ForCausalLM(tiny_qwen3_config(recipe, tokenizer.vocab_size))
    rows = list(data.mixture({t: recipe.samples_per_task for t in data.TASK_NAMES}, seed=recipe.seed + 1000))
    encoded = [encode_conversation(tokenizer, ex.prompt, ex.answer)[0] for ex in rows]
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.learning_rate, total_steps=recipe.train_steps, pct_start=0.1
    )
    rng = random.Random(recipe.seed)
    model.train()
    started = time.time()
    for step in range(1, recipe.train_steps + 1):
        ids, mask = pad_batch(rng.sample(encoded, recipe.batch_size))
        labels = ids.masked_fill(mask == 0, -100)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if report and (step % 50 == 0 or step == recipe.train_steps):
            report(
                stage="target",
                step=step,
                total=recipe.train_steps,
                loss=float(loss.detach()),
                message=f"tiny target {time.time() - started:.0f}s",
            )
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    _quiet_transformers()
    model.save_pretrained(str(out_dir))
    tokenizer.save(out_dir)
    (out_dir / "specops_recipe.json").write_text(json.dumps({"name": TINY_TARGET_NAME, **asdict(recipe)}))
    return out_dir


def ensure_tiny_target(
    recipe: TinyTargetRecipe | None = None,
    cache_root: Path | None = None,
    report: Callable[..., None] | None = None,
) -> Path:
    """Path of the trained tiny target for ``recipe``, training it once and caching it by hash."""
    recipe = recipe or TinyTargetRecipe()
    root = (cache_root or default_cache_root()) / "reference" / "targets"
    final = root / recipe.key()
    if (final / "config.json").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{recipe.key()}.", dir=root))
    try:
        train_tiny_target(recipe, staging, report)
        try:
            staging.rename(final)  # atomic publish; a concurrent builder may have won the race
        except OSError:
            if not (final / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


RECIPE_FIELDS = {
    "hiddenSize": "hidden_size",
    "numLayers": "num_layers",
    "numHeads": "num_heads",
    "numKeyValueHeads": "num_kv_heads",
    "intermediateSize": "intermediate_size",
    "trainSteps": "train_steps",
    "batchSize": "batch_size",
    "learningRate": "learning_rate",
    "samplesPerTask": "samples_per_task",
    "seed": "seed",
}


def recipe_from_params(overrides: dict | None) -> TinyTargetRecipe:
    """A tiny-target recipe from camelCase overrides (``tinyTarget`` task parameter)."""
    if not overrides:
        return TinyTargetRecipe()
    if not isinstance(overrides, dict):
        raise ValueError("tinyTarget: must be an object")
    unknown = set(overrides) - set(RECIPE_FIELDS)
    if unknown:
        raise ValueError(f"tinyTarget: unknown fields {sorted(unknown)}")
    base = asdict(TinyTargetRecipe())
    for key, value in overrides.items():
        field = RECIPE_FIELDS[key]
        try:
            base[field] = type(base[field])(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"tinyTarget.{key}: {value!r} is not a {type(base[field]).__name__}") from error
    recipe = TinyTargetRecipe(**base)
    if recipe.hidden_size % recipe.num_heads or recipe.num_heads % recipe.num_kv_heads:
        raise ValueError("tinyTarget.numHeads: must divide hiddenSize and be a multiple of numKeyValueHeads")
    return recipe


def resolve_target_path(
    spec: str | None,
    cache_root: Path | None = None,
    report: Callable[..., None] | None = None,
    recipe: TinyTargetRecipe | None = None,
) -> Path:
    """A checkpoint directory, or the tiny target when ``spec`` names it (or is empty)."""
    if not spec or spec in (TINY_TARGET_NAME, "tiny"):
        return ensure_tiny_target(recipe, cache_root=cache_root, report=report)
    path = Path(spec)
    if not (path / "config.json").exists():
        raise ValueError(f"targetModel: {spec!r} is neither {TINY_TARGET_NAME!r} nor a checkpoint directory")
    return path


def _quiet_transformers() -> None:
    """Progress bars from weight loading/saving only clutter task logs."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_target(path: Path, device: torch.device):
    """(model, tokenizer) from an HF-layout directory; the model is frozen and in eval mode."""
    from transformers import AutoModelForCausalLM

    _quiet_transformers()

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    model.to(device).eval()
    model.requires_grad_(False)
    return model, load_tokenizer(path)


def default_layer_ids(num_layers: int, count: int = 3) -> list[int]:
    """Evenly spread low / mid / high layer ids (DeepSpec's spacing, scaled to the target)."""
    if num_layers <= count:
        return list(range(num_layers))
    return sorted({round(i * (num_layers - 1) / (count - 1)) for i in range(count)})


class HiddenCapture:
    """Forward hooks that record the chosen decoder layers' outputs and the final-norm output."""

    def __init__(self, model, layer_ids: list[int]) -> None:
        layers = model.model.layers
        for i in layer_ids:
            if not 0 <= i < len(layers):
                raise ValueError(f"targetLayerIds: {i} outside [0, {len(layers) - 1}]")
        self.layer_ids = list(layer_ids)
        self._outputs: dict[int, torch.Tensor] = {}
        self._final: torch.Tensor | None = None
        self._handles = [layers[i].register_forward_hook(self._layer_hook(i)) for i in layer_ids]
        self._handles.append(model.model.norm.register_forward_hook(self._final_hook))

    def _layer_hook(self, index: int):
        def hook(_module, _inputs, output):
            self._outputs[index] = output[0] if isinstance(output, tuple) else output

        return hook

    def _final_hook(self, _module, _inputs, output) -> None:
        self._final = output

    def features(self) -> torch.Tensor:
        """Selected layers concatenated on the last axis: [..., len(layer_ids) * hidden]."""
        return torch.cat([self._outputs[i] for i in self.layer_ids], dim=-1)

    def final_hidden(self) -> torch.Tensor:
        assert self._final is not None
        return self._final

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


class TargetRunner:
    """Single-sequence target with a KV cache that can be rolled back after verification."""

    def __init__(self, model, layer_ids: list[int] | None) -> None:
        from transformers import DynamicCache

        self.model = model
        self.device = next(model.parameters()).device
        self.capture = HiddenCapture(model, layer_ids) if layer_ids else None
        self._cache_cls = DynamicCache
        self.cache = DynamicCache(config=model.config)

    def reset(self) -> None:
        self.cache = self._cache_cls(config=self.model.config)

    @property
    def length(self) -> int:
        return self.cache.get_seq_length()

    @torch.inference_mode()
    def forward(self, tokens: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Append ``tokens``; returns logits [n, V] and selected-layer features [n, k*H] (or None)."""
        ids = torch.tensor([tokens], dtype=torch.long, device=self.device)
        out = self.model(input_ids=ids, past_key_values=self.cache, use_cache=True)
        features = self.capture.features()[0] if self.capture else None
        return out.logits[0].float(), features

    def rollback(self, length: int) -> None:
        """Drop cached positions >= ``length`` (rejected draft tokens)."""
        self.cache.crop(length)

    def close(self) -> None:
        if self.capture:
            self.capture.close()
