"""Copies between object stores and mounted storage, file by file and resumable.

Staging in (before a task runs): every s3:// or gs:// location in the task's params is copied under
the staging folder (task.storage.stagingDir, default <workDir>/staged) as <scheme>/<bucket>/<key>;
a file already there whose size and store checksum match the manifest is skipped, a file is
written under a .partial name and renamed only once complete and verified (MD5 where the store
gives one), so an interrupted staging resumes at the first missing file. Backends then open the
local copy: locations.resolve answers the staged path for the URI.

Publishing out (after success): files are uploaded unless the object is already there with the
same size and checksum, so a re-run sends only what did not arrive; the listing after the upload
verifies every file, and the result records the URI, the total size and a checksum of the tree."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import objectstore
from .errors import AgentError, InvalidTask, MissingInput, Terminated
from .objectstore import Location

MANIFEST_SUFFIX = ".specops-staged.json"
DEFAULT_WORKERS = 8
_PROGRESS_EVERY_S = 1.0

Report = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class _Tally:
    """Files and bytes done, reported at most once a second (and at the end)."""

    def __init__(self, verb: str, uri: str, files: int, total_bytes: int, report: Report):
        self.verb, self.uri, self.files, self.total_bytes, self.report = verb, uri, files, total_bytes, report
        self.done_files = self.done_bytes = self.sent_files = self.skipped_files = 0
        self._lock = threading.Lock()
        self._last = 0.0

    def add(self, size: int, sent: bool) -> None:
        import time

        with self._lock:
            self.done_files += 1
            self.done_bytes += size
            self.sent_files += int(sent)
            self.skipped_files += int(not sent)
            now = time.monotonic()
            if now - self._last < _PROGRESS_EVERY_S and self.done_files < self.files:
                return
            self._last = now
            msg = (
                f"{self.verb} {self.uri}: {self.done_files}/{self.files} files, "
                f"{_human(self.done_bytes)} of {_human(self.total_bytes)}"
            )
        self.report(msg)


def _run_parallel(items, fn, workers: int, stop: threading.Event | None) -> None:
    """Runs fn over items on a thread pool; the first failure stops handing out new items."""
    failed = threading.Event()

    def guarded(item):
        if failed.is_set():
            return
        if stop is not None and stop.is_set():
            failed.set()
            raise Terminated("terminated while copying")
        try:
            fn(item)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="objectstore") as pool:
        futures = [pool.submit(guarded, item) for item in items]
        errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]


# ---------------------------------------------------------------------------------------- staging in


def staged_path(loc: Location, root: Path) -> Path:
    return root / loc.scheme / loc.path


def _manifest_path(dest: Path) -> Path:
    return dest.parent / f".{dest.name}{MANIFEST_SUFFIX}"


def _load_manifest(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) and isinstance(doc.get("files"), dict) else {"files": {}}
    except (OSError, ValueError):
        return {"files": {}}


def _save_manifest(path: Path, manifest: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _list_remote(fs, loc: Location) -> tuple[bool, dict[str, dict]]:
    """(is a single object, {relative name: info}) of what the location names."""
    try:
        info = fs.info(loc.path)
    except FileNotFoundError:
        info = None
    if info is not None and info.get("type") == "file":
        return True, {"": info}
    found = fs.find(loc.path, detail=True)
    prefix = loc.path.rstrip("/") + "/"
    objects = {
        name[len(prefix) :]: i
        for name, i in found.items()
        if name.startswith(prefix) and not name.endswith("/") and i.get("type", "file") == "file"
    }
    return False, objects


def sync_down(
    loc: Location,
    dest: Path,
    report: Report = _noop,
    workers: int = DEFAULT_WORKERS,
    stop: threading.Event | None = None,
    on_file: Callable[[str, bool], None] | None = None,
) -> dict:
    """Copies the object or prefix at loc to dest (a file or a folder). Returns what it did."""
    fs = objectstore.filesystem(loc)
    try:
        single, objects = _list_remote(fs, loc)
    except Exception as e:  # noqa: BLE001 - every store error becomes a named failure
        raise objectstore.translate(e, loc, "listing") from None
    if not objects:
        raise MissingInput(f"{loc.field}: nothing at {loc.uri} (no object and no objects under it)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    manifest_file = _manifest_path(dest)
    manifest = _load_manifest(manifest_file)
    if manifest.get("uri") != loc.uri:
        manifest = {"uri": loc.uri, "files": {}}
    lock = threading.Lock()
    tally = _Tally(
        "staging", loc.uri, len(objects), sum(int(i.get("size") or 0) for i in objects.values()), report
    )

    def target(rel: str) -> Path:
        return dest if single else dest / rel

    def already_there(rel: str, info: dict) -> bool:
        entry = manifest["files"].get(rel)
        local = target(rel)
        if not entry or not local.is_file():
            return False
        st = local.stat()
        return (
            entry.get("size") == int(info.get("size") or 0) == st.st_size
            and entry.get("checksum") == objectstore.remote_checksum(info)
            and entry.get("mtimeNs") == st.st_mtime_ns
        )

    def fetch(item: tuple[str, dict]) -> None:
        rel, info = item
        size = int(info.get("size") or 0)
        if already_there(rel, info):
            tally.add(size, sent=False)
            if on_file:
                on_file(rel, False)
            return
        local = target(rel)
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + ".partial")
        remote = info.get("name") or loc.path
        try:
            fs.get_file(remote, str(partial))
        except Exception as e:  # noqa: BLE001
            raise objectstore.translate(e, loc, f"reading {rel or 'the object'} of") from None
        got = partial.stat().st_size
        if got != size:
            raise MissingInput(f"{loc.field}: {remote} arrived with {got} bytes, the store lists {size}")
        want = objectstore.remote_checksum(info)
        if (
            want
            and want.startswith("md5:")
            and want not in objectstore.local_checksums(str(partial), loc.scheme)
        ):
            partial.unlink(missing_ok=True)
            raise MissingInput(f"{loc.field}: {remote} arrived with a different MD5 than the store lists")
        os.replace(partial, local)
        st = local.stat()
        with lock:
            manifest["files"][rel] = {"size": size, "checksum": want, "mtimeNs": st.st_mtime_ns}
            _save_manifest(manifest_file, manifest)
        tally.add(size, sent=True)
        if on_file:
            on_file(rel, True)

    _run_parallel(sorted(objects.items()), fetch, workers, stop)
    return {
        "uri": loc.uri,
        "path": str(dest),
        "files": len(objects),
        "sizeBytes": tally.done_bytes,
        "copiedFiles": tally.sent_files,
        "skippedFiles": tally.skipped_files,
    }


def object_store_sources(node, path: str = "params"):
    """(field, location dict) of every s3:// or gs:// location in the params, depth first."""
    if isinstance(node, dict):
        uri = node.get("uri")
        if isinstance(uri, str) and objectstore.is_object_store(uri):
            yield path, node
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                yield from object_store_sources(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from object_store_sources(v, f"{path}[{i}]")


def staging_root(task: dict) -> Path:
    configured = (task.get("storage") or {}).get("stagingDir")
    if configured:
        return Path(configured)
    work = task.get("workDir") or str(Path(task["output"]["path"]) / ".work")
    return Path(work) / "staged"


def stage_inputs(task: dict, report: Report = _noop, stop: threading.Event | None = None) -> dict[str, str]:
    """Stages every object-store input of the task; returns {uri: local path} (also kept in the
    task under "_staged", where locations.resolve finds it)."""
    staged: dict[str, str] = task.setdefault("_staged", {})
    root = staging_root(task)
    for field, source in object_store_sources(task.get("params") or {}):
        loc = Location.of(source, f"{field}.uri")
        if loc.uri in staged:
            continue
        done = sync_down(loc, staged_path(loc, root), report, stop=stop)
        staged[source["uri"]] = staged[loc.uri] = done["path"]
        report(
            f"staged {loc.uri}: {done['files']} files, {_human(done['sizeBytes'])} "
            f"({done['copiedFiles']} copied, {done['skippedFiles']} already there)"
        )
    return staged


# ------------------------------------------------------------------------------------- publishing out


def _local_files(src: Path) -> list[tuple[str, Path]]:
    if src.is_file():
        return [("", src)]
    if not src.is_dir():
        raise MissingInput(f"{src} does not exist")
    files = []
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_file() and not name.endswith((".partial", MANIFEST_SUFFIX)):
                files.append((p.relative_to(src).as_posix(), p))
    return files


def tree_checksum(entries: list[tuple[str, int, str]]) -> str:
    """sha256 over `name size md5` lines, sorted: one checksum for a published file or folder."""
    h = hashlib.sha256()
    for rel, size, md5 in sorted(entries):
        h.update(f"{rel}\t{size}\t{md5}\n".encode())
    return "sha256:" + h.hexdigest()


def sync_up(
    src: Path,
    loc: Location,
    report: Report = _noop,
    workers: int = DEFAULT_WORKERS,
    stop: threading.Event | None = None,
    on_file: Callable[[str, bool], None] | None = None,
) -> dict:
    """Uploads the file or folder src to loc, skipping objects already there with the same size and
    checksum; verifies every object afterwards. Returns uri, files, sizeBytes and checksum."""
    files = _local_files(src)
    if not files:
        raise MissingInput(f"{loc.field}: {src} holds no files to copy")
    fs = objectstore.filesystem(loc)
    single = files[0][0] == ""

    def remote_name(rel: str) -> str:
        return loc.path if single else f"{loc.path}/{rel}"

    def listing() -> dict[str, dict]:
        # fs.exists() answers False for refused credentials and unreachable stores alike; info()
        # and find() raise what the store said.
        if single:
            try:
                return {loc.path: fs.info(loc.path)}
            except FileNotFoundError:
                fs.info(loc.bucket)  # raises for a missing bucket; a missing object is fine
                return {}
        return fs.find(loc.path, detail=True)

    try:
        existing = listing()
    except Exception as e:  # noqa: BLE001
        raise objectstore.translate(e, loc, "listing") from None

    sums: dict[str, set[str]] = {}
    tally = _Tally("publishing to", loc.uri, len(files), sum(p.stat().st_size for _, p in files), report)

    def push(item: tuple[str, Path]) -> None:
        rel, path = item
        size = path.stat().st_size
        sums[rel] = objectstore.local_checksums(str(path), loc.scheme)
        there = existing.get(remote_name(rel))
        if there and int(there.get("size") or -1) == size and objectstore.remote_checksum(there) in sums[rel]:
            tally.add(size, sent=False)
            if on_file:
                on_file(rel, False)
            return
        try:
            fs.put_file(str(path), remote_name(rel), chunksize=objectstore._S3_PART_BYTES)
        except Exception as e:  # noqa: BLE001
            raise objectstore.translate(e, loc, f"writing {rel or path.name} to") from None
        tally.add(size, sent=True)
        if on_file:
            on_file(rel, True)

    _run_parallel(files, push, workers, stop)
    try:
        fs.invalidate_cache()
        after = listing()
    except Exception as e:  # noqa: BLE001
        raise objectstore.translate(e, loc, "verifying") from None
    entries = []
    for rel, path in files:
        info = after.get(remote_name(rel))
        size = path.stat().st_size
        if not info or int(info.get("size") or -1) != size:
            raise MissingInput(f"{loc.field}: {remote_name(rel)} is missing or short after the upload")
        got = objectstore.remote_checksum(info)
        if got is not None and got not in sums[rel]:
            raise MissingInput(f"{loc.field}: {remote_name(rel)} has a different checksum than {path}")
        md5 = next(s for s in sums[rel] if s.startswith("md5:"))[4:]
        entries.append((rel or path.name, size, md5))
    return {
        "uri": loc.uri,
        "files": len(files),
        "sizeBytes": sum(e[1] for e in entries),
        "checksum": tree_checksum(entries),
        "copiedFiles": tally.sent_files,
        "skippedFiles": tally.skipped_files,
    }


def publish_location(task: dict) -> Location | None:
    target = task.get("publish")
    if not target:
        return None
    if not objectstore.is_object_store(target.get("uri", "")):
        raise InvalidTask(f"publish.uri: {target.get('uri')!r} is not an s3:// or gs:// location")
    return Location.of(target, "publish.uri")


def result_object(loc: Location, result_file: str) -> Location:
    """Where an eval's result JSON goes: the URI itself when it names a .json object, else inside it."""
    if loc.uri.endswith(".json"):
        return loc
    return Location(f"{loc.uri}/{result_file}", loc.field, loc.endpoint, loc.region, loc.path_style)


def publish_task(params: dict, ctx) -> dict:
    """Task kind publish: copy params.source (a checkpoint folder or file on storage) to publish.uri."""
    loc = publish_location(ctx.task)
    if loc is None:
        raise InvalidTask("publish: a publish task needs publish.uri")
    src = Path(params["source"]).resolve()  # e.g. step_latest, a link to the newest checkpoint
    if not src.exists():
        raise MissingInput(f"params.source: {src} does not exist")
    done = sync_up(src, loc, lambda m: ctx.report(message=m), stop=ctx.stop_event)
    ctx.report(message=f"published {done['uri']}: {done['files']} files, {_human(done['sizeBytes'])}")
    return {"outputs": {"published": done}}


__all__ = [
    "AgentError",
    "object_store_sources",
    "publish_location",
    "publish_task",
    "stage_inputs",
    "sync_down",
    "sync_up",
]
