"""gs:// against fake-gcs-server (the GCS JSON API the Google client libraries test against)."""

from pathlib import Path

import pytest

from specops_runtime.agent import objectstore, staging
from specops_runtime.agent.errors import MissingInput
from specops_runtime.agent.objectstore import Location


def _checkpoint(root: Path, files: int = 6) -> Path:
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"model-{i:05d}.safetensors").write_bytes(bytes([i]) * (1000 + i * 4096))
    (root / "config.json").write_text('{"architectures": ["Qwen3DSparkModel"]}')
    return root


@pytest.fixture
def bucket(fake_gcs, request, monkeypatch):
    monkeypatch.delenv(objectstore.GCS_CREDENTIALS_ENV, raising=False)
    name = "specops-" + request.node.name.replace("_", "-").lower()[:40]
    fs = objectstore.filesystem(Location(f"gs://{name}", "test", endpoint=fake_gcs.endpoint))
    fs.mkdir(name)
    return name


def test_publish_then_stage_a_checkpoint_round_trips_and_skips_what_is_there(fake_gcs, bucket, tmp_path):
    src = _checkpoint(tmp_path / "ckpt")
    loc = Location(f"gs://{bucket}/drafts/step_5", "publish.uri", endpoint=fake_gcs.endpoint)
    first = staging.sync_up(src, loc)
    assert first["files"] == 7 and first["copiedFiles"] == 7
    assert first["sizeBytes"] == sum(p.stat().st_size for p in src.iterdir())
    again = staging.sync_up(src, loc)
    assert again["copiedFiles"] == 0 and again["skippedFiles"] == 7
    assert again["checksum"] == first["checksum"]

    dest = tmp_path / "staged"
    down = staging.sync_down(Location(loc.uri, "params.draft.uri", endpoint=fake_gcs.endpoint), dest)
    assert down["copiedFiles"] == 7
    for p in src.iterdir():
        assert (dest / p.name).read_bytes() == p.read_bytes()
    assert (
        staging.sync_down(Location(loc.uri, "params.draft.uri", endpoint=fake_gcs.endpoint), dest)[
            "skippedFiles"
        ]
        == 7
    )


def test_a_changed_file_is_sent_again(fake_gcs, bucket, tmp_path):
    src = _checkpoint(tmp_path / "ckpt", files=2)
    loc = Location(f"gs://{bucket}/d", "publish.uri", endpoint=fake_gcs.endpoint)
    staging.sync_up(src, loc)
    (src / "config.json").write_text('{"architectures": ["changed"]}')
    assert staging.sync_up(src, loc)["copiedFiles"] == 1


def test_a_missing_bucket_names_the_field(fake_gcs, tmp_path):
    loc = Location("gs://specops-no-such-bucket/x.jsonl", "params.prompts.uri", endpoint=fake_gcs.endpoint)
    with pytest.raises(MissingInput, match=r"params\.prompts\.uri: .*gs://specops-no-such-bucket"):
        staging.sync_down(loc, tmp_path / "x.jsonl")
