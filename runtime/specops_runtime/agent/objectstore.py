"""s3:// and gs:// through fsspec's s3fs and gcsfs: one filesystem per location (endpoint, region,
path style), credentials from the environment or the pod's cloud identity, and the store's errors
turned into the contract's failure classes with the task field and the store's own message.

Credentials never pass through here as arguments the logs could show: s3fs/botocore read
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, or the web identity token of IRSA
(AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), or the instance profile, by their default chain; gcsfs
reads GOOGLE_APPLICATION_CREDENTIALS_JSON (a service-account key, parsed here) or Google's default
credentials (GOOGLE_APPLICATION_CREDENTIALS, GKE Workload Identity's metadata server)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass

from .errors import AgentError, InvalidTask, MissingInput, RetriableInfrastructure

SCHEMES = ("s3", "gs")
GCS_CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS_JSON"
# s3fs uploads a file in one PUT below twice its part size and in parts of this size above it; the
# ETag of what we uploaded is then predictable, which is what lets a re-run skip an uploaded file.
_S3_PART_BYTES = 50 * 2**20


def is_object_store(uri: str) -> bool:
    return uri.split("://", 1)[0] in SCHEMES and "://" in uri


@dataclass(frozen=True)
class Location:
    """An object-store location as the task names it (params.x, output.publish)."""

    uri: str
    field: str
    endpoint: str | None = None
    region: str | None = None
    path_style: bool = False

    @classmethod
    def of(cls, source: dict, field: str) -> Location:
        return cls(
            uri=source["uri"].rstrip("/"),
            field=field,
            endpoint=source.get("endpoint"),
            region=source.get("region"),
            path_style=bool(source.get("pathStyle", False)),
        )

    @property
    def scheme(self) -> str:
        return self.uri.split("://", 1)[0]

    @property
    def path(self) -> str:
        """bucket/key, as fsspec names objects."""
        return self.uri.split("://", 1)[1]

    @property
    def bucket(self) -> str:
        return self.path.split("/", 1)[0]


def filesystem(loc: Location, env: dict[str, str] | None = None):
    env = dict(os.environ) if env is None else env
    if loc.scheme == "s3":
        import s3fs

        config: dict = {
            "connect_timeout": 10,
            "read_timeout": 120,
            "retries": {"max_attempts": 3, "mode": "standard"},
        }
        if loc.path_style:
            config["s3"] = {"addressing_style": "path"}
        client: dict = {}
        if loc.region:
            client["region_name"] = loc.region
        return s3fs.S3FileSystem(
            endpoint_url=loc.endpoint,
            client_kwargs=client,
            config_kwargs=config,
            skip_instance_cache=True,
        )
    if loc.scheme == "gs":
        # The JSON-API filesystem itself: gcsfs's default class adds experimental gRPC calls for
        # zonal/HNS buckets that emulators and private endpoints do not serve.
        from gcsfs.core import GCSFileSystem

        token: object = None  # Google's default chain: key file, Workload Identity, metadata server
        if env.get(GCS_CREDENTIALS_ENV):
            try:
                token = json.loads(env[GCS_CREDENTIALS_ENV])
            except json.JSONDecodeError as e:
                raise InvalidTask(f"{loc.field}: {GCS_CREDENTIALS_ENV} is not a JSON key ({e.msg})") from None
        elif loc.endpoint:
            token = "anon"  # an emulator or private endpoint without a key
        return GCSFileSystem(
            token=token, endpoint_url=loc.endpoint, skip_instance_cache=True, retries=3, timeout=60
        )
    raise InvalidTask(f"{loc.field}: {loc.uri} is not an s3:// or gs:// location")


def _store_message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return re.sub(r"\s+", " ", text)[:600]


def translate(exc: BaseException, loc: Location, doing: str) -> AgentError:
    """The contract's failure class for a store error, naming the task field and quoting the store."""
    if isinstance(exc, AgentError):
        return exc
    msg = _store_message(exc)
    names = {c.__name__ for c in type(exc).__mro__}
    where = f"{loc.field}: {doing} {loc.uri}"
    endpoint = f" at {loc.endpoint}" if loc.endpoint else ""
    if names & {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ClientConnectorError",
        "ServerDisconnectedError",
    } or (isinstance(exc, OSError) and "Cannot connect to host" in msg):
        return RetriableInfrastructure(f"{where}: store unreachable{endpoint}: {msg}")
    if isinstance(exc, PermissionError) or re.search(
        r"InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|Forbidden|401|403|invalid_grant|Unauthorized",
        msg,
    ):
        return InvalidTask(f"{where}: the store refused the credentials (credentialsSecretRef): {msg}")
    if isinstance(exc, FileNotFoundError) or re.search(r"NoSuchBucket|NoSuchKey|Not Found|404", msg):
        return MissingInput(f"{where}: not found (bucket {loc.bucket} or the object under it): {msg}")
    if isinstance(exc, (ConnectionError, TimeoutError)) or names & {"ReadTimeoutError", "ClientError"}:
        return RetriableInfrastructure(f"{where}: {msg}")
    return RetriableInfrastructure(f"{where}: {type(exc).__name__}: {msg}")


def remote_checksum(info: dict) -> str | None:
    """The store's content checksum of an object: `md5:<hex>` where the store gives one (an S3 ETag
    of a single PUT, GCS md5Hash), `etag:<etag>` for a multipart S3 ETag, None otherwise."""
    md5 = info.get("md5Hash")
    if md5:
        return "md5:" + base64.b64decode(md5).hex()
    etag = (info.get("ETag") or info.get("etag") or "").strip('"')
    if re.fullmatch(r"[0-9a-f]{32}", etag):
        return "md5:" + etag
    if re.fullmatch(r"[0-9a-f]{32}-[0-9]+", etag):
        return "etag:" + etag
    return None


def local_checksums(path: str, scheme: str) -> set[str]:
    """Checksums of a local file in every form remote_checksum can report for the same bytes as
    this client uploads them (whole-file MD5; for S3 also the multipart ETag of s3fs's parts)."""
    whole = hashlib.md5(usedforsecurity=False)
    parts: list[bytes] = []
    part = hashlib.md5(usedforsecurity=False)
    in_part = 0
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(8 * 2**20):
            whole.update(chunk)
            size += len(chunk)
            view = memoryview(chunk)
            while view:
                take = min(len(view), _S3_PART_BYTES - in_part)
                part.update(view[:take])
                in_part += take
                view = view[take:]
                if in_part == _S3_PART_BYTES:
                    parts.append(part.digest())
                    part, in_part = hashlib.md5(usedforsecurity=False), 0
    sums = {"md5:" + whole.hexdigest()}
    if scheme == "s3" and size >= 2 * _S3_PART_BYTES:
        if in_part:
            parts.append(part.digest())
        sums.add(f"etag:{hashlib.md5(b''.join(parts), usedforsecurity=False).hexdigest()}-{len(parts)}")
    return sums
