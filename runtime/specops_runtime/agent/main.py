"""`python -m specops_runtime.agent --task /etc/specops/task.json`: validate, serve progress,
dispatch, map failures to exit codes, write the result and the termination message."""

from __future__ import annotations

import _thread
import argparse
import json
import logging
import os
import signal
import threading
import time
import traceback
from pathlib import Path

import jsonschema

from . import contract, dispatch, gate, staging, termination
from .context import TaskContext
from .errors import GateFailed, InvalidTask, PublishFailed, RetriableInfrastructure, Terminated, classify
from .progress import ProgressServer, ProgressState, now_rfc3339
from .validation import validate_task

log = logging.getLogger("specops.agent")

_RESULT_SECTIONS = ("outputs", "training", "evaluation", "load", "profile", "details")
# Seconds between SIGTERM and interrupting in-process work that did not stop by itself; Kubernetes
# sends SIGKILL after terminationGracePeriodSeconds (30 by default).
_DEFAULT_GRACE_S = 20.0


def load_task(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise InvalidTask(f"task: {path} does not exist") from e
    except json.JSONDecodeError as e:
        raise InvalidTask(f"task: {path} is not valid JSON ({e})") from e


def build_result(
    task: dict | None,
    raw_doc: dict | None,
    returned,
    reason: str,
    message: str | None,
    started: float,
    start_time: str,
) -> dict:
    src = task or raw_doc or {}
    consts = contract.constants()
    result: dict = {"apiVersion": consts["apiVersion"], "kind": "Result"}
    if src.get("kind") in consts["taskKinds"]:
        result["taskKind"] = src["kind"]
    if src.get("backend") in consts["backends"]:
        result["backend"] = src["backend"]
    result["status"] = {"success": "succeeded", "terminated": "terminated"}.get(reason, "failed")
    result["exitCode"] = contract.exit_code(reason)
    result["reason"] = reason
    if message:
        result["message"] = message
    result["startTime"] = start_time
    result["completionTime"] = now_rfc3339()
    result["durationSeconds"] = round(time.monotonic() - started, 3)
    if isinstance(returned, dict):
        for key, value in returned.items():
            if key in _RESULT_SECTIONS:
                result[key] = value
            elif key == "message" and not message:
                result["message"] = str(value)
            else:
                result.setdefault("details", {})[key] = value
    return result


def finish_evaluation(result: dict, task: dict) -> str | None:
    """Fills summary and gate of an eval result; returns a failure message when the gate failed."""
    evaluation = result.get("evaluation")
    if task["kind"] != "eval" or not isinstance(evaluation, dict) or "results" not in evaluation:
        return None
    evaluation.setdefault("summary", gate.summarize(evaluation["results"]))
    evaluation["gate"] = gate.verdict(
        evaluation["summary"], evaluation["results"], task["params"].get("gate")
    )
    if evaluation["gate"]["verdict"] == "Failed":
        return "gate failed: " + "; ".join(evaluation["gate"]["reasons"])
    return None


def write_result(result: dict, ctx: TaskContext | None) -> None:
    if ctx is None:
        return
    path = ctx.output_dir / contract.constants()["resultFile"]
    result["resultPath"] = str(path)
    errors = list(jsonschema.Draft202012Validator(contract.load("result.schema.json")).iter_errors(result))
    if errors:  # a reporting bug must not lose a finished run's result: write it, say so
        log.warning("result does not match result.schema.json: %s", errors[0].message)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        log.warning("could not write %s: %s", path, e)
        result.pop("resultPath", None)


# A copy that fails with a transient store error (unreachable, throttled, reset) is tried again
# after each of these pauses; every try skips the objects that already arrived.
PUBLISH_RETRY_DELAYS_S = (2.0, 10.0)


def _copy(src: Path, loc, ctx: TaskContext) -> dict:
    for delay in (*PUBLISH_RETRY_DELAYS_S, None):
        try:
            return staging.sync_up(src, loc, lambda m: ctx.report(message=m), stop=ctx.stop_event)
        except RetriableInfrastructure as e:
            if delay is None or ctx.stop_event.wait(delay):
                raise
            log.warning("%s; trying the copy again in %ss", e, delay)
    raise AssertionError("unreachable")


def publish_outputs(result: dict, task: dict, ctx: TaskContext) -> str:
    """Copies a finished task's product to task.publish: an eval's result JSON, gate passed or not
    (the figures are wanted either way), or a checkpoint; records what arrived in outputs.published.
    An eval whose copy fails ends as publishFailed with its figures and the store's message, an exit
    code the Job does not retry, so the evaluation is not run again for a copy."""
    reason = result["reason"]
    try:
        loc = staging.publish_location(task)
        if loc is None:
            return reason
        checkpoint = (result.get("outputs") or {}).get("checkpoint") or {}
        if task["kind"] == "eval":
            src, loc = (
                ctx.output_dir / contract.constants()["resultFile"],
                staging.result_object(loc, contract.constants()["resultFile"]),
            )
        elif checkpoint.get("path"):
            src = Path(checkpoint["path"])
        else:
            src = ctx.output_dir
        result.setdefault("outputs", {})["published"] = _copy(src, loc, ctx)
    except BaseException as e:  # noqa: BLE001 - a failed copy is the task's failure, named
        reason = "terminated" if ctx.should_stop() else classify(e)
        if task["kind"] == "eval" and reason != "terminated":
            reason = PublishFailed.reason
        result.update(status="failed", reason=reason, exitCode=contract.exit_code(reason), message=str(e))
        log.error("%s: %s", reason, e)
    write_result(result, ctx)
    return reason


def _install_sigterm(ctx: TaskContext, state: ProgressState) -> None:
    grace = float(os.environ.get("SPECOPS_TERMINATION_GRACE_SECONDS", _DEFAULT_GRACE_S))
    main_done = threading.Event()
    ctx._main_done = main_done  # type: ignore[attr-defined]

    def interrupt_later():
        if not main_done.wait(grace):
            _thread.interrupt_main()

    def on_term(signum, frame):
        if ctx.stop_event.is_set():
            raise Terminated("terminated: second SIGTERM")
        log.warning("SIGTERM: stopping (children get SIGTERM, in-process work %ss to finish)", grace)
        ctx.stop_event.set()
        state.set_state("terminating")
        for child in list(ctx.children):
            try:
                child.send_signal(signal.SIGTERM)
            except OSError:
                pass
        threading.Thread(target=interrupt_later, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)


def run(task_path: str, modules: dict[str, str] | None = None, port: int | None = None) -> int:
    started, start_time = time.monotonic(), now_rfc3339()
    raw: dict | None = None
    task: dict | None = None
    ctx: TaskContext | None = None
    server: ProgressServer | None = None
    state: ProgressState | None = None
    returned = None
    reason, message = "success", None
    try:
        loaded = load_task(task_path)
        raw = loaded if isinstance(loaded, dict) else None
        task = validate_task(loaded)
        state = ProgressState(task["kind"], task["backend"])
        consts = contract.constants()
        if port is None:
            port = int(os.environ.get(consts["env"]["progressPort"], consts["progress"]["defaultPort"]))
        try:
            server = ProgressServer(state, port).start()
            log.info("progress on :%d%s", server.port, consts["progress"]["paths"]["progress"])
        except OSError as e:
            log.warning("progress server not started on port %s: %s", port, e)
        ctx = TaskContext(task, state)
        if threading.current_thread() is threading.main_thread():
            _install_sigterm(ctx, state)
        ctx.prepare_dirs()
        if task["kind"] == "publish":
            fn = staging.publish_task
        else:
            fn = dispatch.resolve(task["backend"], task["kind"], modules)
            staging.stage_inputs(task, lambda m: ctx.report(message=m), ctx.stop_event)
        returned = fn(task["params"], ctx)
        if ctx.should_stop() and returned is None:
            raise Terminated("terminated before the task finished")
    except BaseException as e:  # noqa: BLE001 - every failure must become an exit code and a result
        reason = "terminated" if ctx is not None and ctx.should_stop() else classify(e)
        message = str(e) or type(e).__name__
        if reason == "internalError":
            log.error("%s", "".join(traceback.format_exception(e)))
        else:
            log.error("%s: %s", reason, message)
    finally:
        if ctx is not None and hasattr(ctx, "_main_done"):
            ctx._main_done.set()
    result = build_result(task, raw, returned, reason, message, started, start_time)
    if reason == "success" and task is not None:
        failed = finish_evaluation(result, task)
        if failed:
            reason = GateFailed.reason
            result.update(status="failed", reason=reason, exitCode=contract.exit_code(reason), message=failed)
    write_result(result, ctx)
    # A missed gate is a completed evaluation too: its result JSON is published like a passed one's.
    completed = reason == "success" or (
        reason == GateFailed.reason and task is not None and task["kind"] == "eval"
    )
    if completed and task is not None and task["kind"] != "publish" and ctx is not None:
        reason = publish_outputs(result, task, ctx)
    termination.write(result)
    if state is not None:
        state.set_state("succeeded" if reason == "success" else "failed")
    if server is not None:
        server.stop()
    log.info("exit %d (%s)", result["exitCode"], reason)
    return result["exitCode"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # a malformed command line is an invalid task, not exit 2
        self.print_usage()
        print(f"invalid task invocation: {message}")
        raise SystemExit(contract.exit_code("invalidTask"))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    consts = contract.constants()
    parser = _Parser(prog="python -m specops_runtime.agent", description="SpecOps runtime task agent")
    parser.add_argument(
        "--task",
        default=os.environ.get(consts["env"]["task"], consts["defaultTaskPath"]),
        help=f"task JSON (default ${consts['env']['task']} or {consts['defaultTaskPath']})",
    )
    args = parser.parse_args(argv)
    return run(str(Path(args.task)))
