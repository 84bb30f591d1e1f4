"""Failure classes of a task and how any exception maps onto the contract's exit reasons."""

from __future__ import annotations

import errno


class AgentError(Exception):
    reason = "internalError"


class InvalidTask(AgentError, ValueError):
    reason = "invalidTask"


class MissingInput(AgentError, FileNotFoundError):
    reason = "missingInput"


class OutOfMemory(AgentError, MemoryError):
    reason = "outOfMemory"


class RetriableInfrastructure(AgentError, ConnectionError):
    reason = "retriableInfrastructure"


class GateFailed(AgentError):
    reason = "gateFailed"


class PublishFailed(AgentError):
    reason = "publishFailed"


class Unsupported(AgentError, NotImplementedError):
    reason = "unsupported"


class Terminated(AgentError):
    reason = "terminated"


_OOM_NAMES = {"OutOfMemoryError"}
_OOM_TEXT = ("CUDA out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "HIP out of memory", "out of memory")
_NET_NAMES = {
    "DistBackendError",
    "DistNetworkError",
    "DistStoreError",
    "ConnectError",
    "ConnectTimeout",
    "ReadTimeout",
    "RemoteProtocolError",
    "APIConnectionError",
    "APITimeoutError",
}
_NET_TEXT = ("NCCL", "ProcessGroupNCCL", "Connection reset by peer", "Connection refused", "rendezvous")
_NET_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EPIPE,
}
_MISSING_NAMES = {"RepositoryNotFoundError", "RevisionNotFoundError", "EntryNotFoundError", "GatedRepoError"}


def classify(exc: BaseException) -> str:
    """The exit reason for an exception; order matters (an OOM is a RuntimeError, a refused
    connection an OSError, a JSON syntax error a ValueError)."""
    if isinstance(exc, AgentError):
        return exc.reason
    if isinstance(exc, KeyboardInterrupt):
        return "terminated"
    names = {c.__name__ for c in type(exc).__mro__}
    text = str(exc)
    if names & _OOM_NAMES or isinstance(exc, MemoryError) or any(t in text for t in _OOM_TEXT[:3]):
        return "outOfMemory"
    if (
        names & _NET_NAMES
        or isinstance(exc, (ConnectionError, TimeoutError))
        or (isinstance(exc, OSError) and exc.errno in _NET_ERRNOS)
        or any(t in text for t in _NET_TEXT[:2])
    ):
        return "retriableInfrastructure"
    if isinstance(exc, FileNotFoundError) or names & _MISSING_NAMES:
        return "missingInput"
    if isinstance(exc, ValueError):
        return "invalidTask"
    if isinstance(exc, NotImplementedError):
        return "unsupported"
    return "internalError"


def classify_log(text: str) -> str | None:
    """The failure class a child process's log tail points at, if any (last matching line wins
    over earlier noise: an OOM traceback ends the log)."""
    reason = None
    for line in text.splitlines():
        if any(t in line for t in _OOM_TEXT):
            reason = "outOfMemory"
        elif any(t in line for t in _NET_TEXT) or "DistNetworkError" in line or "DistBackendError" in line:
            reason = reason or "retriableInfrastructure"
        elif "FileNotFoundError" in line or "RepositoryNotFoundError" in line:
            reason = reason or "missingInput"
    return reason


ERROR_BY_REASON = {
    "invalidTask": InvalidTask,
    "missingInput": MissingInput,
    "outOfMemory": OutOfMemory,
    "retriableInfrastructure": RetriableInfrastructure,
    "gateFailed": GateFailed,
    "publishFailed": PublishFailed,
    "unsupported": Unsupported,
    "terminated": Terminated,
    "internalError": AgentError,
}
