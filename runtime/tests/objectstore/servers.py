"""Real object stores for tests, on 127.0.0.1 free ports with temp folders: MinIO (S3) and
fake-gcs-server (GCS), both built from their Go modules by test/objectstore/build-binaries.sh."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ACCESS_KEY = "specops-test"
SECRET_KEY = "specops-test-secret-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(name: str) -> str:
    """Builds (once, cached) or finds a server (minio, fake-gcs-server); its path."""
    out = subprocess.run(
        ["bash", str(REPO / "test/objectstore/build-binaries.sh"), name],
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    ).stdout
    return dict(line.split(" ", 1) for line in out.strip().splitlines())[name]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} not serving after {timeout}s")


class Server:
    def __init__(self, binary: str, data: Path, log: Path):
        self.binary, self.data, self.log_path = binary, data, log
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


class Minio(Server):
    """A MinIO server; `requests(api)` reads its own S3 request counters (Prometheus, public)."""

    def start(self) -> Minio:
        env = dict(
            os.environ,
            MINIO_ROOT_USER=ACCESS_KEY,
            MINIO_ROOT_PASSWORD=SECRET_KEY,
            MINIO_PROMETHEUS_AUTH_TYPE="public",
            MINIO_BROWSER="off",
            MINIO_UPDATE="off",
        )
        cmd = [self.binary, "server", str(self.data), "--address", f"127.0.0.1:{self.port}", "--quiet"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT)
        _wait_http(f"{self.endpoint}/minio/health/live", self.proc)
        return self

    def requests(self, api: str) -> int:
        """S3 requests of one API (e.g. putobject, getobject) served since this process started."""
        with urllib.request.urlopen(f"{self.endpoint}/minio/v2/metrics/node", timeout=5) as r:
            text = r.read().decode()
        total = 0
        for line in text.splitlines():
            if line.startswith("minio_s3_requests_total{") and f'api="{api}"' in line:
                total += int(float(line.rsplit(" ", 1)[1]))
        return total


class FakeGcs(Server):
    def start(self) -> FakeGcs:
        cmd = [
            self.binary,
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(self.port),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(self.data),
            "-public-host",
            f"127.0.0.1:{self.port}",
            "-external-url",
            self.endpoint,
            "-log-level",
            "warn",
        ]
        self.proc = subprocess.Popen(cmd, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT)
        _wait_http(f"{self.endpoint}/storage/v1/b", self.proc)
        return self
