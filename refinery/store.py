"""The store: content-addressed wheels, build records, logs, plans, inputs.

Layout (DESIGN §5.3), identical for every backend::

    wheels/<sha256>/<wheel-filename>            immutable
    wheels/<sha256>/<wheel-filename>.metadata   PEP 658 core metadata
    records/<name>/<version>/<python>.json      compare-and-swap
    logs/<name>/<version>/<python>/<attempt>.log
    plans/<plan_id>.json   inputs/<input_id>.json

A backend only moves blobs (:class:`BlobStore`); the ledger rules (immutability,
compare-and-swap with retries) live here once, in :class:`Store`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from .errors import ConflictError, InputError, StoreError
from .models import BuildRecord, InputRecord, NodeStatus, Plan, WheelRef, normalize_name

DEFAULT_STORE = "./.refinery/store"
CAS_RETRIES = 20


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class BlobStore(Protocol):
    """What a backend provides. Keys are ``/``-separated relative paths."""

    url: str

    def get(self, key: str) -> tuple[bytes, str] | None:
        """Bytes and an opaque version tag (ETag), or ``None`` when absent."""
        ...

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write only if the key does not exist. ``False`` when it already did."""
        ...

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> str:
        """Write when the current version is ``etag`` (``None``: must be absent).

        Returns the new tag; raises :class:`ConflictError` when the race was lost.
        """
        ...

    def put(self, key: str, data: bytes) -> None:
        """Unconditional write, for derived files (plans, index pages)."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix``, in no promised order."""
        ...


class LocalBlobStore:
    """A folder. Atomic by ``link``/``rename``; CAS under an exclusive ``flock``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"refusing store key {key!r}")
        return self.root / key

    def get(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, sha256_bytes(data)

    def _temp(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return Path(tmp)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        tmp = self._temp(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        return True

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f".{path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> str:
        path = self._path(key)
        with self._locked(path):
            current = self.get(key)
            current_tag = current[1] if current else None
            if current_tag != etag:
                raise ConflictError(f"{key}: changed since it was read")
            tmp = self._temp(path, data)
            os.replace(tmp, path)
        return sha256_bytes(data)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.replace(self._temp(path, data), path)

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if f.startswith("."):
                    continue
                yield Path(dirpath, f).relative_to(self.root).as_posix()


def open_blobs(url: str | None) -> BlobStore:
    """A backend for ``file://…``, a plain path, or ``s3://bucket/prefix``."""
    url = url or os.environ.get("REFINERY_STORE") or DEFAULT_STORE
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme == "file" else url)
        return LocalBlobStore(path)
    if parsed.scheme == "s3":
        raise InputError(f"{url}: S3 stores are not available in this version (use a folder)")
    raise InputError(
        f"unsupported store URL {url!r} (use file://PATH, a path, or s3://BUCKET/PREFIX)"
    )


def record_key(name: str, version: str, python: str) -> str:
    return f"records/{normalize_name(name)}/{version}/{python}.json"


def log_key(name: str, version: str, python: str, attempt: int) -> str:
    return f"logs/{normalize_name(name)}/{version}/{python}/{attempt}.log"


def wheel_key(sha256: str, filename: str) -> str:
    return f"wheels/{sha256}/{filename}"


def wheel_metadata(path: Path) -> bytes:
    """The ``.dist-info/METADATA`` of a wheel (PEP 658 serves it beside the wheel)."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                return zf.read(info)
    raise InputError("wheel has no .dist-info/METADATA", path=str(path))


@dataclass
class Store:
    """Ledger rules over any :class:`BlobStore`."""

    blobs: BlobStore

    @classmethod
    def open(cls, url: str | None = None) -> Store:
        return cls(open_blobs(url))

    @property
    def url(self) -> str:
        return self.blobs.url

    # --- wheels -----------------------------------------------------------------
    def put_wheel(self, path: Path) -> WheelRef:
        """Store a wheel and its metadata, content-addressed. Idempotent for same bytes."""
        data = path.read_bytes()
        digest = sha256_bytes(data)
        key = wheel_key(digest, path.name)
        metadata = wheel_metadata(path)
        # The metadata goes first: a wheel is visible only once its metadata exists.
        self.blobs.put_if_absent(key + ".metadata", metadata)
        self.blobs.put_if_absent(key, data)
        return WheelRef(filename=path.name, sha256=digest, size=len(data))

    def get_wheel(self, ref: WheelRef) -> bytes | None:
        got = self.blobs.get(wheel_key(ref.sha256, ref.filename))
        return got[0] if got else None

    # --- logs -------------------------------------------------------------------
    def put_log(self, name: str, version: str, python: str, attempt: int, data: bytes) -> str:
        key = log_key(name, version, python, attempt)
        if not self.blobs.put_if_absent(key, data):
            existing = self.blobs.get(key)
            if existing is None or existing[0] != data:
                raise ConflictError(f"{key}: a different log for this attempt is already stored")
        return key

    # --- records ----------------------------------------------------------------
    def get_record(self, name: str, version: str, python: str) -> BuildRecord | None:
        got = self.blobs.get(record_key(name, version, python))
        return BuildRecord.from_json(json.loads(got[0])) if got else None

    def update_record(
        self,
        name: str,
        version: str,
        python: str,
        change: Callable[[BuildRecord | None], BuildRecord],
    ) -> BuildRecord:
        """Read, apply ``change``, write back with compare-and-swap; retry lost races."""
        key = record_key(name, version, python)
        for _ in range(CAS_RETRIES):
            got = self.blobs.get(key)
            current = BuildRecord.from_json(json.loads(got[0])) if got else None
            updated = change(current).evolve(updated=now())
            data = json.dumps(updated.to_json(), indent=1, sort_keys=True).encode()
            try:
                self.blobs.put_if_match(key, data, got[1] if got else None)
            except ConflictError:
                continue
            return updated
        raise ConflictError(f"{key}: gave up after {CAS_RETRIES} lost compare-and-swap races")

    def records(self) -> Iterator[BuildRecord]:
        for key in self.blobs.list("records/"):
            if key.endswith(".json"):
                got = self.blobs.get(key)
                if got:
                    yield BuildRecord.from_json(json.loads(got[0]))

    # --- plans and inputs -------------------------------------------------------
    def put_plan(self, plan: Plan) -> str:
        key = f"plans/{plan.plan_id}.json"
        self.blobs.put(key, json.dumps(plan.to_json(), indent=1).encode())
        return key

    def get_plan(self, plan_id: str) -> Plan | None:
        got = self.blobs.get(f"plans/{plan_id}.json")
        return Plan.from_json(json.loads(got[0])) if got else None

    def put_input(self, record: InputRecord) -> None:
        self.blobs.put(
            f"inputs/{record.input_id}.json", json.dumps(record.to_json(), indent=1).encode()
        )

    def inputs(self) -> Iterator[InputRecord]:
        for key in self.blobs.list("inputs/"):
            got = self.blobs.get(key)
            if got:
                yield InputRecord.from_json(json.loads(got[0]))


class StoreLookup(Protocol):
    """What the planner may ask of the store (read-only)."""

    def get_record(self, name: str, version: str, python: str) -> BuildRecord | None: ...


def usable_record(record: BuildRecord | None) -> bool:
    return record is not None and record.status is NodeStatus.BUILT and record.wheel is not None
