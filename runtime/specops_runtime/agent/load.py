"""Task kind load: send task sets' prompts to a live OpenAI-compatible endpoint (a SpecServe's
Service) through its chat API, as the offline evaluation decodes them: the same prompt rows and
chat messages, seed = decoding.seed + prompt index within its task set, temperature from the
decoding settings, max_tokens = decoding.maxNewTokens. The acceptance figures are not computed
here: the operator reads them from the engines' /metrics before and after this task runs.

Standard library only (urllib and a thread pool), so any runtime image can run it. The API key,
when the server needs one, comes from env SPECOPS_API_KEY and is only ever put in the
Authorization header (never logged, never in the result).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import contract
from .errors import InvalidTask, MissingInput, RetriableInfrastructure, Unsupported

BUILTIN = "builtin://"


def prompt_messages(row: dict) -> list[dict[str, str]]:
    """The conversation up to (not including) its last assistant turn, as the offline evaluation
    builds it (reference/regenerate.py prompt_messages; test_load holds the two equal)."""
    turns = row.get("conversations") or [{"role": "user", "content": t} for t in row.get("turns", [])]
    while turns and turns[-1].get("role") == "assistant":
        turns = turns[:-1]
    if not turns:
        raise ValueError(f"conversations: row {row.get('id')!r} has no user turn")
    return [{"role": t.get("role", "user"), "content": t.get("content") or ""} for t in turns]


def _jsonl(path: Path, count: int | None, field: str) -> list[dict]:
    if not path.is_file():
        raise MissingInput(f"{field}: {path} is not a JSONL file")
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return rows[:count] if count else rows


def task_rows(task: dict, params: dict, ctx, field: str) -> list[dict]:
    """Prompt rows of one task set: a JSONL source read here; builtin:// sets (and a task without a
    source) through the reference backend's own eval_rows, which the offline evaluation uses."""
    source = task.get("source")
    if source and not source["uri"].startswith(BUILTIN):
        if source["uri"].startswith("hf://"):
            raise Unsupported(
                f"{field}.source.uri: hf:// is not read; stage it onto a PVC or an object store"
            )
        return _jsonl(Path(ctx.resolve(source["uri"], f"{field}.source.uri")), task.get("samples"), field)
    try:
        from ..reference.tasks import eval_rows
    except ModuleNotFoundError as e:
        raise Unsupported(
            f"{field}: the prompts of {task['name']!r} need the reference backend ({e.name} missing); "
            "give a JSONL source"
        ) from e
    return eval_rows(task, params, ctx, field)


@dataclass
class Answer:
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seconds: float


class Client:
    def __init__(self, endpoint: str, timeout: float, api_key: str | None) -> None:
        self.base = endpoint.rstrip("/")
        self.timeout = timeout
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            detail = e.read()[:500].decode("utf-8", "replace")
            message = f"params.endpoint: {method} {self.base}{path}: HTTP {e.code}: {detail}"
            # A refused request (bad settings, a wrong or missing key) fails the same way again.
            raise (InvalidTask if 400 <= e.code < 500 else RetriableInfrastructure)(message) from e
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise RetriableInfrastructure(f"params.endpoint: {method} {self.base}{path}: {reason}") from e

    def first_model(self) -> str:
        models = self._call("GET", "/models").get("data") or []
        if not models or not models[0].get("id"):
            raise RuntimeError(f"GET {self.base}/models lists no model")
        return str(models[0]["id"])

    def chat(self, body: dict) -> Answer:
        started = time.perf_counter()
        reply = self._call("POST", "/chat/completions", body)
        seconds = time.perf_counter() - started
        usage = reply.get("usage") or {}
        choice = (reply.get("choices") or [{}])[0]
        return Answer(
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            str(choice.get("finish_reason") or ""),
            seconds,
        )


def request_body(model: str, messages: list[dict], decoding: dict, index: int) -> dict:
    """One chat request of prompt ``index``: the offline evaluation's decoding settings."""
    return {
        "model": model,
        "messages": messages,
        "max_tokens": decoding["maxNewTokens"],
        "temperature": decoding["temperature"],
        "seed": decoding["seed"] + index,
        "stream": False,
        "chat_template_kwargs": {"enable_thinking": bool(decoding.get("thinking"))},
    }


def load(params: dict, ctx) -> dict:
    api_key = os.environ.get(contract.constants()["env"]["apiKey"]) or None
    client = Client(params["endpoint"], float(params["requestTimeoutSeconds"]), api_key)
    decoding = params["decoding"]
    concurrency = int(params["concurrency"])
    prompts: list[tuple[str, list[list[dict]]]] = []
    for i, task in enumerate(params["tasks"]):
        rows = task_rows(task, params, ctx, f"params.tasks[{i}]")
        if not rows:
            raise InvalidTask(f"params.tasks[{i}]: {task['name']} has no prompts")
        prompts.append((task["name"], [prompt_messages(r) for r in rows]))
    model = params.get("model") or client.first_model()
    ctx.log(
        f"load: {sum(len(p) for _, p in prompts)} prompts to {client.base} as {model}, {concurrency} at once"
    )
    out = []
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="specops-load") as pool:
        for done, (name, messages) in enumerate(prompts, start=1):
            started = time.perf_counter()
            answers = list(
                pool.map(
                    lambda im: client.chat(request_body(model, im[1], decoding, im[0])), enumerate(messages)
                )
            )
            out.append(
                {
                    "name": name,
                    "requests": len(answers),
                    "promptTokens": sum(a.prompt_tokens for a in answers),
                    "completionTokens": sum(a.completion_tokens for a in answers),
                    "stoppedAtEos": sum(1 for a in answers if a.finish_reason == "stop"),
                    "requestSeconds": round(sum(a.seconds for a in answers), 6),
                    "durationSeconds": round(time.perf_counter() - started, 6),
                }
            )
            ctx.report(
                stage="load", step=done, total=len(prompts), message=f"{name}: {len(answers)} requests"
            )
            if ctx.should_stop():
                break
    return {"load": {"concurrency": concurrency, "model": model, "tasks": out}}
