import os
from collections.abc import Iterator

import pytest

from .servers import ACCESS_KEY, SECRET_KEY, FakeGcs, Minio, binary


@pytest.fixture(scope="session")
def minio(tmp_path_factory) -> Iterator[Minio]:
    root = tmp_path_factory.mktemp("minio")
    server = Minio(binary("minio"), root / "data", root / "minio.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory) -> Iterator[FakeGcs]:
    root = tmp_path_factory.mktemp("fakegcs")
    server = FakeGcs(binary("fake-gcs-server"), root / "data", root / "fakegcs.log").start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(monkeypatch) -> dict[str, str]:
    """The environment a pod gets from an S3 credentials Secret (envFrom)."""
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return dict(os.environ)
