"""(backend, kind) -> the function that runs it. Backends are imported at run time so an image
carries only what its target needs (the vllm image has no DeepSpec, the train image no engine)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .errors import Unsupported

FUNCTION_BY_KIND = {
    "prepare-data": "prepare_data",
    "regenerate": "regenerate",
    "target-cache": "target_cache",
    "train": "train",
    "eval": "evaluate",
    "serve": "serve",
    "profile": "profile",
}

MODULE_BY_BACKEND = {
    "reference": "specops_runtime.reference.tasks",
    "deepspec": "specops_runtime.adapters.deepspec.tasks",
    "vllm": "specops_runtime.adapters.vllm",
    "sglang": "specops_runtime.adapters.sglang",
}


def resolve(backend: str, kind: str, modules: dict[str, str] | None = None) -> Callable:
    if kind == "load":  # the agent's own OpenAI client, whatever the backend
        from .load import load

        return load
    module_name = (modules or MODULE_BY_BACKEND).get(backend)
    fn_name = FUNCTION_BY_KIND.get(kind)
    if module_name is None or fn_name is None:
        raise Unsupported(f"backend: no implementation of {kind} for backend {backend}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Only "this backend is not in the image" is unsupported; a broken import inside it is a bug.
        if e.name and (
            module_name == e.name
            or module_name.startswith(e.name + ".")
            or e.name in ("torch", "vllm", "sglang")
        ):
            raise Unsupported(f"backend: {backend} is not available in this image ({e.name} missing)") from e
        raise
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise Unsupported(f"backend: {backend} does not implement {kind}")
    return fn
