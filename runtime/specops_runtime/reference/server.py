"""OpenAI-compatible HTTP server doing speculative decoding with the reference models.

Endpoints: POST /v1/completions, POST /v1/chat/completions (both with ``stream`` SSE),
GET /v1/models, GET /health, GET /metrics (vLLM metric names). One engine decodes one request at
a time (batch size 1, like DeepSpec's evaluator); others wait in a FIFO and show up in
``vllm:num_requests_waiting``. Responses carry vLLM-style per-request spec-decode metrics.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .metrics import VllmMetrics
from .sampling import SamplingParams
from .speculative import GenerationResult, Generator, RoundEvent

_DONE = object()


@dataclass
class EngineConfig:
    model_name: str
    speculative_length: int = 4
    confidence_threshold: float = 0.0
    max_model_len: int = 512
    default_max_tokens: int = 16


class Engine:
    """Wraps a Generator (speculative or target-only) behind a FIFO lock and the metrics."""

    def __init__(self, generator: Generator, tokenizer, config: EngineConfig, metrics: VllmMetrics) -> None:
        self.generator = generator
        self.tokenizer = tokenizer
        self.config = config
        self.metrics = metrics
        self.lock = threading.Lock()
        self.speculative = generator.drafter is not None
        # Waiting requests park a thread on the lock; size the pool so they never queue unseen.
        self.executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="specops-engine")

    def run(
        self,
        prompt: list[int],
        max_tokens: int,
        sampling: SamplingParams,
        seed: int | None,
        on_text,
        enqueued: float,
    ) -> GenerationResult:
        """Decode one request (blocking); ``on_text(delta)`` receives text as rounds finish.

        The caller has already counted the request as waiting (see ``build_app``)."""
        with self.lock:
            self.metrics.gauge_waiting(-1)
            self.metrics.gauge_running(+1)
            started = time.perf_counter()
            emitted: list[int] = []
            sent = ""
            last_event = [started]

            def on_round(event: RoundEvent) -> None:
                nonlocal sent
                now = time.perf_counter()
                if event.speculative:
                    self.metrics.record_round(event.proposal_len, event.accepted)
                if emitted:  # the first output event is TTFT, later ones are inter-token steps
                    self.metrics.observe_itl(now - last_event[0])
                last_event[0] = now
                emitted.extend(event.tokens)
                self.metrics.set_kv_tokens(len(prompt) + len(emitted))
                text = self.tokenizer.decode(emitted)
                if text.startswith(sent) and len(text) > len(sent):
                    on_text(text[len(sent) :])
                    sent = text

            try:
                result = self.generator.generate(
                    prompt,
                    max_tokens,
                    sampling,
                    gamma=self.config.speculative_length,
                    seed=seed,
                    on_round=on_round,
                    confidence_threshold=self.config.confidence_threshold,
                )
            finally:
                self.metrics.gauge_running(-1)
                self.metrics.set_kv_tokens(0)  # the sequence's KV slots are freed
            e2e = time.perf_counter() - enqueued
            self.metrics.record_request(
                len(prompt),
                len(result.tokens),
                result.finish_reason,
                result.time_to_first_token + (started - enqueued),
                e2e,
                started - enqueued,
            )
            return result


def spec_metrics(result: GenerationResult) -> dict:
    """vLLM-style per-request figures from the engine's own round counts, the same counts the
    /metrics counters add up (vLLM counts a round's accepted drafts before cutting at EOS)."""
    stats = result.engine_stats
    return {
        "num_spec_steps": stats.proposals,
        "num_draft_tokens": stats.draft_tokens,
        "num_accepted_draft_tokens": stats.accepted_tokens,
        "mean_acceptance_length": 1 + stats.accepted_tokens / stats.proposals if stats.proposals else None,
        "draft_acceptance_rate": stats.accepted_tokens / stats.draft_tokens if stats.draft_tokens else None,
        "acceptance_by_position": [a / stats.proposals for a in stats.accepted_per_position]
        if stats.proposals
        else [],
    }


class BadRequest(Exception):
    pass


def _sampling(body: dict) -> tuple[SamplingParams, int | None]:
    """OpenAI/vLLM sampling fields; temperature defaults to 1.0, top_k <= 0 (vLLM's -1) means off."""

    def field(key: str, default):
        value = body.get(key)
        return default if value is None else value

    try:
        top_k = int(field("top_k", 0))
        params = SamplingParams(
            temperature=float(field("temperature", 1.0)),
            top_k=max(top_k, 0),
            top_p=float(field("top_p", 1.0)),
        ).validate()
        seed = body.get("seed")
        return params, int(seed) if seed is not None else None
    except (TypeError, ValueError) as error:
        raise BadRequest(str(error)) from error


API_KEY_ENV = "SPECOPS_API_KEY"


class RequireApiKey:
    """With a key set, /v1/* needs ``Authorization: Bearer <key>`` (401 otherwise); /health and
    /metrics stay open and OPTIONS passes, as in vLLM's --api-key middleware."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "OPTIONS" and scope["path"].startswith("/v1"):
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not secrets.compare_digest(given, self.expected):
                response = JSONResponse({"error": "Unauthorized"}, status_code=401)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(engine: Engine, api_key: str | None = None) -> Starlette:
    """api_key None: taken from SPECOPS_API_KEY (set from the SpecServe's Secret); empty: no key."""
    name = engine.config.model_name
    key = os.environ.get(API_KEY_ENV, "") if api_key is None else api_key

    async def health(_request: Request) -> Response:
        return Response(status_code=200)

    async def models(_request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": name,
                        "object": "model",
                        "created": 0,
                        "owned_by": "specops",
                        "max_model_len": engine.config.max_model_len,
                    }
                ],
            }
        )

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def serve_request(request: Request, chat: bool) -> Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "body: invalid JSON")
        try:
            prompt_ids = _prompt_ids(engine, body, chat)
            sampling, seed = _sampling(body)
            max_tokens = int(
                body.get("max_tokens")
                or body.get("max_completion_tokens")
                or engine.config.default_max_tokens
            )
            if max_tokens < 1:
                raise BadRequest("max_tokens: must be >= 1")
            if (
                len(prompt_ids) + max_tokens + engine.config.speculative_length + 1
                > engine.config.max_model_len
            ):
                raise BadRequest("max_tokens: prompt plus max_tokens exceed max_model_len")
        except BadRequest as error:
            return _error(400, str(error))
        request_id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        created = int(time.time())
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        enqueued = time.perf_counter()

        def on_text(delta: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, delta)

        def work() -> GenerationResult:
            try:
                return engine.run(prompt_ids, max_tokens, sampling, seed, on_text, enqueued)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        engine.metrics.gauge_waiting(+1)
        task = loop.run_in_executor(engine.executor, work)
        if not body.get("stream"):
            result = await task
            text = engine.tokenizer.decode(result.tokens)
            return JSONResponse(_final_body(chat, request_id, created, name, text, result))

        async def events():
            if chat:
                yield _sse(
                    _chunk(True, request_id, created, name, {"role": "assistant", "content": ""}, None)
                )
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                delta = {"content": item} if chat else item
                yield _sse(_chunk(chat, request_id, created, name, delta, None))
            result = await task
            final = _chunk(chat, request_id, created, name, {} if chat else "", result.finish_reason)
            final["usage"] = _usage(result)
            final["metrics"] = {"speculative_decoding": spec_metrics(result)}
            yield _sse(final)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def completions(request: Request) -> Response:
        return await serve_request(request, chat=False)

    async def chat_completions(request: Request) -> Response:
        return await serve_request(request, chat=True)

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", models),
            Route("/metrics", metrics),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        ]
    )
    if key:
        app.add_middleware(RequireApiKey, api_key=key)
    return app


def _prompt_ids(engine: Engine, body: dict, chat: bool) -> list[int]:
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: must be a non-empty list")
        try:
            ids = engine.tokenizer.chat_prompt(
                [{"role": m.get("role", "user"), "content": m.get("content") or ""} for m in messages]
            )
        except ValueError as error:
            raise BadRequest(str(error)) from error
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise BadRequest("prompt: must be a string")
        ids = engine.tokenizer.completion_prompt(prompt)
    if not ids:
        raise BadRequest("prompt: is empty")
    return ids


def _usage(result: GenerationResult) -> dict:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": len(result.tokens),
        "total_tokens": result.prompt_tokens + len(result.tokens),
    }


def _final_body(
    chat: bool, request_id: str, created: int, model: str, text: str, result: GenerationResult
) -> dict:
    if chat:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": result.finish_reason,
        }
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": result.finish_reason}
    return {
        "id": request_id,
        "object": "chat.completion" if chat else "text_completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": _usage(result),
        "metrics": {
            "time_to_first_token_ms": result.time_to_first_token * 1000,
            "generation_time_ms": result.elapsed * 1000,
            "speculative_decoding": spec_metrics(result),
        },
    }


def _chunk(chat: bool, request_id: str, created: int, model: str, delta, finish_reason) -> dict:
    if chat:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        kind = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": delta, "logprobs": None, "finish_reason": finish_reason}
        kind = "text_completion"
    return {"id": request_id, "object": kind, "created": created, "model": model, "choices": [choice]}


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "BadRequestError", "code": status}}, status_code=status
    )


class ServerHandle:
    """A uvicorn server running in a background thread (for tests and embedding)."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerHandle:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self._socket.close()
