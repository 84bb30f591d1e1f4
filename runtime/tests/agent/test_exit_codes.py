"""Every failure class maps to its own exit code."""

import errno

import pytest

from specops_runtime.agent.errors import GateFailed, MissingInput, classify, classify_log


class OutOfMemoryError(RuntimeError):  # torch.cuda.OutOfMemoryError's name and base
    pass


class DistNetworkError(RuntimeError):  # torch.distributed's name
    pass


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ValueError("params.training.learningRate: too large"), "invalidTask"),
        (FileNotFoundError("/models/x"), "missingInput"),
        (MissingInput("params.draft.uri: gone"), "missingInput"),
        (OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "outOfMemory"),
        (RuntimeError("CUDA out of memory. Tried to allocate"), "outOfMemory"),
        (MemoryError(), "outOfMemory"),
        (DistNetworkError("connection to rank 3 lost"), "retriableInfrastructure"),
        (
            RuntimeError("NCCL error in: ProcessGroupNCCL.cpp, unhandled system error"),
            "retriableInfrastructure",
        ),
        (ConnectionRefusedError(), "retriableInfrastructure"),
        (OSError(errno.EHOSTUNREACH, "no route"), "retriableInfrastructure"),
        (TimeoutError(), "retriableInfrastructure"),
        (GateFailed("tau 2.1 < 3"), "gateFailed"),
        (NotImplementedError(), "unsupported"),
        (KeyboardInterrupt(), "terminated"),
        (RuntimeError("something else"), "internalError"),
        (KeyError("x"), "internalError"),
    ],
)
def test_classify(exc, reason):
    assert classify(exc) == reason


def test_classify_log_of_a_child():
    oom = "step 3\nTraceback...\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1 GiB"
    assert classify_log(oom) == "outOfMemory"
    nccl = "[rank3]: torch.distributed.DistBackendError: NCCL error in: ../ProcessGroupNCCL.cpp:1970"
    assert classify_log(nccl) == "retriableInfrastructure"
    assert classify_log("FileNotFoundError: [Errno 2] No such file: '/cache/manifest.json'") == "missingInput"
    assert classify_log("AssertionError: global_batch_size must be divisible") is None
