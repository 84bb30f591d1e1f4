"""Run a child tool under the agent: stream and parse its log, forward SIGTERM to its whole
process group, and turn a failed exit into the contract's failure classes."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from collections.abc import Callable

from ..agent.errors import ERROR_BY_REASON, Terminated, classify_log
from ..agent.redact import redact_env, redact_text


class ProcessGroup:
    """SIGTERM target for ctx.children: the child and everything it spawned (torch spawn workers)."""

    def __init__(self, popen: subprocess.Popen):
        self.popen = popen

    def send_signal(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass


def describe(cmd: list[str], env: dict[str, str]) -> str:
    shown = {
        k: v
        for k, v in redact_env(env).items()
        if k in _SHOWN_ENV or k.startswith(("SPECOPS_", "VLLM_", "SGLANG_"))
    }
    # A secret passed as a flag (SGLang's --api-key) is masked like the environment's secrets.
    return " ".join(f"{k}={v}" for k, v in sorted(shown.items())) + " " + redact_text(" ".join(cmd), env)


_SHOWN_ENV = {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "HOME", "CUDA_VISIBLE_DEVICES", "HF_TOKEN"}


def run(
    cmd: list[str],
    *,
    env: dict[str, str],
    ctx,
    cwd: str | None = None,
    on_line: Callable[[str], None] | None = None,
    name: str | None = None,
    tail_lines: int = 200,
) -> list[str]:
    """Runs cmd to completion; returns the log tail. Raises the mapped failure on a non-zero exit."""
    name = name or os.path.basename(cmd[1] if len(cmd) > 1 and cmd[0].endswith("python") else cmd[0])
    ctx.log(f"running: {describe(cmd, env)}")
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    popen = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        errors="replace",
        start_new_session=True,  # its own process group, so SIGTERM reaches spawned workers too
    )
    group = ProcessGroup(popen)
    ctx.children.append(group)
    try:
        assert popen.stdout is not None
        for raw in popen.stdout:
            line = redact_text(raw.rstrip("\n"), env)
            tail.append(line)
            print(line, file=sys.stdout, flush=True)
            if on_line is not None:
                on_line(line)
        rc = popen.wait()
    finally:
        ctx.children.remove(group)
        if popen.poll() is None:
            group.send_signal(signal.SIGKILL)
    if rc == 0:
        return list(tail)
    if ctx.should_stop():
        raise Terminated(f"{name} stopped by SIGTERM (exit {rc})")
    text = "\n".join(tail)
    reason = classify_log(text) or ("outOfMemory" if rc == -signal.SIGKILL else "internalError")
    last = " | ".join(list(tail)[-5:])
    raise ERROR_BY_REASON[reason](f"{name} exited with {rc}: {last}"[:4000])
