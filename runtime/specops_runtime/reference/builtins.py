"""``builtin://`` names the reference backend ships (the example manifests use them).

Models
  tiny-qwen3          the tiny Qwen3 target (trained on first use, cached by recipe hash)
  tiny-qwen3-l<N>     the same recipe with N decoder layers (1..16), e.g. tiny-qwen3-l8
  untrained-draft     eval/serve only: a randomly initialised draft of ``method``, shaped like a
                      default-trained one (block size = speculative length, default 7), for
                      comparisons against a trained draft
Prompt / task sets
  tiny-mix            math + code + chat prompts (prepare-data)
  tiny-math, tiny-code, tiny-chat
                      one synthetic set each (prepare-data prompts, eval task sources); the eval
                      task names math / code / chat (the reference's own) mean the same sets
Unknown names raise FileNotFoundError naming the field (the agent's missing-input exit).
"""

from __future__ import annotations

import re

from . import data as synthetic
from .target import TinyTargetRecipe

SCHEME = "builtin://"
TINY_TARGET = "tiny-qwen3"
UNTRAINED_DRAFT = "untrained-draft"
PROMPT_SETS = {"tiny-mix": synthetic.TASK_NAMES, **{f"tiny-{t}": (t,) for t in synthetic.TASK_NAMES}}
_LAYERS = re.compile(rf"^{TINY_TARGET}-l([0-9]+)$")


def name_of(uri: str) -> str | None:
    """The builtin name of a ``builtin://`` URI, else None."""
    return uri[len(SCHEME) :] if uri.startswith(SCHEME) else None


def _unknown(field: str, name: str, known: list[str]) -> FileNotFoundError:
    return FileNotFoundError(f"{field}: unknown builtin {name!r} (known: {', '.join(known)})")


def target_recipe(name: str, field: str) -> TinyTargetRecipe:
    if name == TINY_TARGET:
        return TinyTargetRecipe()
    match = _LAYERS.match(name)
    if match and 1 <= int(match.group(1)) <= 16:
        return TinyTargetRecipe(num_layers=int(match.group(1)))
    raise _unknown(field, name, [TINY_TARGET, f"{TINY_TARGET}-l<1..16>"])


def prompt_tasks(name: str, field: str) -> tuple[str, ...]:
    """Synthetic task sets behind a builtin prompt set."""
    if name in PROMPT_SETS:
        return PROMPT_SETS[name]
    raise _unknown(field, name, sorted(PROMPT_SETS))


def eval_set_name(task: str) -> str:
    """The dataset file name of a synthetic task's held-out prompts (``tiny-math``)."""
    return f"tiny-{task}"


def synthetic_task(name: str) -> str | None:
    """The synthetic generator behind an eval set name (``tiny-math`` or ``math``), else None."""
    if name in synthetic.TASK_NAMES:
        return name
    sets = PROMPT_SETS.get(name)
    return sets[0] if sets and len(sets) == 1 else None


def eval_source(name: str, field: str) -> str:
    task = synthetic_task(name)
    if task is None:
        raise _unknown(field, name, [f"tiny-{t}" for t in synthetic.TASK_NAMES])
    return task
