"""Progress of the running task: GET /progress (JSON, progress.schema.json), GET /metrics
(Prometheus, same figures), GET /healthz. Served from a daemon thread of the agent."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import contract

log = logging.getLogger("specops.agent")

# Fields backends may report, and the snake_case spellings accepted for them.
FIELDS = (
    "stage",
    "step",
    "total",
    "epoch",
    "loss",
    "acceptanceByPosition",
    "tauEstimate",
    "throughput",
    "throughputUnit",
    "etaSeconds",
    "message",
)
ALIASES = {
    "acceptance_by_position": "acceptanceByPosition",
    "tau_estimate": "tauEstimate",
    "tau": "tauEstimate",
    "throughput_unit": "throughputUnit",
    "eta_seconds": "etaSeconds",
    "total_steps": "total",
    "totalSteps": "total",
}
_INTS = {"step", "total"}
_NUMBERS = {"epoch", "loss", "tauEstimate", "throughput", "etaSeconds"}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ProgressState:
    """Thread-safe progress snapshot plus the Prometheus gauges that mirror it."""

    def __init__(self, kind: str, backend: str):
        self._lock = threading.Lock()
        self._unknown_warned: set[str] = set()
        start = now_rfc3339()
        self._data: dict = {
            "kind": kind,
            "backend": backend,
            "state": "starting",
            "startTime": start,
            "time": start,
        }
        self.registry = CollectorRegistry()
        r = self.registry
        labels = {"kind": kind, "backend": backend}
        Gauge("specops_task_info", "The task this pod runs.", ["kind", "backend"], registry=r).labels(
            **labels
        ).set(1)
        self._state = Gauge("specops_task_state", "1 for the current lifecycle state.", ["state"], registry=r)
        self._gauges = {
            "step": Gauge("specops_task_step", "Current step.", registry=r),
            "total": Gauge("specops_task_total_steps", "Total steps.", registry=r),
            "epoch": Gauge("specops_task_epoch", "Current (fractional) epoch.", registry=r),
            "loss": Gauge("specops_task_loss", "Latest training loss.", registry=r),
            "tauEstimate": Gauge(
                "specops_task_tau_estimate", "Estimated tau, bonus token counted.", registry=r
            ),
            "throughput": Gauge(
                "specops_task_throughput", "Work per second (see /progress unit).", registry=r
            ),
            "etaSeconds": Gauge("specops_task_eta_seconds", "Estimated seconds left.", registry=r),
        }
        self._acceptance = Gauge(
            "specops_task_acceptance_rate",
            "Share of rounds whose i-th draft token survived.",
            ["position"],
            registry=r,
        )
        self._updated = Gauge(
            "specops_task_last_update_timestamp_seconds", "Unix time of the last update.", registry=r
        )
        self._set_state_gauge("starting")

    def _set_state_gauge(self, state: str) -> None:
        for s in ("starting", "running", "succeeded", "failed", "terminating"):
            self._state.labels(state=s).set(1 if s == state else 0)

    def set_state(self, state: str) -> None:
        with self._lock:
            self._data["state"] = state
            self._data["time"] = now_rfc3339()
            self._set_state_gauge(state)
            self._updated.set(time.time())

    def update(self, **fields) -> None:
        clean: dict = {}
        for key, value in fields.items():
            name = ALIASES.get(key, key)
            if name not in FIELDS:
                if name not in self._unknown_warned:
                    self._unknown_warned.add(name)
                    log.warning("progress field %r is not in the contract; ignored", key)
                continue
            if value is None:
                clean[name] = None
            elif name in _INTS:
                clean[name] = int(value)
            elif name in _NUMBERS:
                v = float(value)
                if math.isfinite(v):
                    clean[name] = v
            elif name == "acceptanceByPosition":
                clean[name] = [min(1.0, max(0.0, float(x))) for x in value][:64]
            else:
                clean[name] = (
                    str(value)[:1024] if name == "message" else str(value)[: 63 if name == "stage" else 32]
                )
        with self._lock:
            for k, v in clean.items():
                if v is None:
                    self._data.pop(k, None)
                else:
                    self._data[k] = v
            if self._data["state"] == "starting":
                self._data["state"] = "running"
                self._set_state_gauge("running")
            self._data["time"] = now_rfc3339()
            for k, g in self._gauges.items():
                if k in clean and clean[k] is not None:
                    g.set(clean[k])
            if clean.get("acceptanceByPosition") is not None:
                for i, a in enumerate(clean["acceptanceByPosition"]):
                    self._acceptance.labels(position=str(i)).set(a)
            self._updated.set(time.time())

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self._data)


def _handler(state: ProgressState):
    paths = contract.constants()["progress"]["paths"]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == paths["progress"]:
                self._send(200, "application/json", json.dumps(state.snapshot()).encode())
            elif path == paths["metrics"]:
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(state.registry))
            elif path == paths["health"]:
                self._send(200, "text/plain", b"ok\n")
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002 - scrapes every few seconds would flood logs
            pass

    return Handler


class ProgressServer:
    def __init__(self, state: ProgressState, port: int, host: str = "0.0.0.0"):
        self.httpd = ThreadingHTTPServer((host, port), _handler(state))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="progress-http", daemon=True)

    def start(self) -> ProgressServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
