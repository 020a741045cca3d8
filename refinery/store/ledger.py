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
import random
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from refinery.core.clock import now
from refinery.core.errors import ConflictError, InputError, StoreError
from refinery.core.models import (
    BuildRecord,
    InputRecord,
    NodeStatus,
    Plan,
    WheelRef,
    normalize_name,
)

DEFAULT_STORE = "./.refinery/store"
CAS_RETRIES = 30
CAS_BASE_DELAY = 0.002  # seconds; doubled per lost race, with full jitter
CAS_MAX_DELAY = 0.25


def _race_pause(attempt: int) -> None:
    """Back off before retrying a lost compare-and-swap: writers that keep colliding
    spread out instead of retrying in lockstep until they give up."""
    if attempt:
        time.sleep(random.uniform(0, min(CAS_MAX_DELAY, CAS_BASE_DELAY * 2**attempt)))


SUMMARY_SCHEMA = 1


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

    def list_tags(self, prefix: str) -> Iterator[tuple[str, str]]:
        """``(key, tag)`` under ``prefix`` from one listing, without reading objects.

        The tag changes whenever the object's content does (S3: the ETag; a folder:
        inode, size and mtime, since every write is a rename of a new file)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove a derived object (index pages); ledger objects are never deleted."""
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
        for key, _tag in self._scan(prefix, stat=False):
            yield key

    def list_tags(self, prefix: str) -> Iterator[tuple[str, str]]:
        return self._scan(prefix, stat=True)

    def flat_tags(self, prefix: str) -> dict[str, str]:
        """``list_tags`` for a folder without subfolders (``projects/``), in one pass:
        names relative to ``prefix``. The index's hot path at 10,000 projects."""
        out: dict[str, str] = {}
        try:
            entries = os.scandir(self._path(prefix.rstrip("/")))
        except FileNotFoundError:
            return out
        with entries:
            for e in entries:
                if e.name[0] != "." and e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    out[e.name] = f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"
        return out

    def _scan(self, prefix: str, *, stat: bool) -> Iterator[tuple[str, str]]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        rel = base.relative_to(self.root).as_posix()
        start = "" if rel == "." else rel + "/"
        stack = [(str(base), start)]
        while stack:
            path, key_prefix = stack.pop()
            try:
                entries = os.scandir(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, f"{key_prefix}{entry.name}/"))
                    elif stat:
                        st = entry.stat(follow_symlinks=False)
                        yield (
                            f"{key_prefix}{entry.name}",
                            f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}",
                        )
                    else:
                        yield f"{key_prefix}{entry.name}", ""

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


def open_blobs(url: str | None) -> BlobStore:
    """A backend for ``file://…``, a plain path, or ``s3://bucket/prefix``."""
    url = url or os.environ.get("REFINERY_STORE") or DEFAULT_STORE
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme == "file" else url)
        return LocalBlobStore(path)
    if parsed.scheme == "s3":
        from refinery.store.s3 import open_s3

        return open_s3(url)
    raise InputError(
        f"unsupported store URL {url!r} (use file://PATH, a path, or s3://BUCKET/PREFIX)"
    )


def record_key(name: str, version: str, python: str) -> str:
    return f"records/{normalize_name(name)}/{version}/{python}.json"


def log_key(name: str, version: str, python: str, attempt: int) -> str:
    return f"logs/{normalize_name(name)}/{version}/{python}/{attempt}.log"


def wheel_key(sha256: str, filename: str) -> str:
    return f"wheels/{sha256}/{filename}"


def project_key(name: str) -> str:
    return f"projects/{normalize_name(name)}.json"


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
        for attempt in range(CAS_RETRIES):
            _race_pause(attempt)
            got = self.blobs.get(key)
            current = BuildRecord.from_json(json.loads(got[0])) if got else None
            updated = change(current).evolve(updated=now())
            data = json.dumps(updated.to_json(), indent=1, sort_keys=True).encode()
            try:
                self.blobs.put_if_match(key, data, got[1] if got else None)
            except ConflictError:
                continue
            self.refresh_summary(name, versions=[(version, python)])
            return updated
        raise ConflictError(f"{key}: gave up after {CAS_RETRIES} lost compare-and-swap races")

    # --- project summaries ------------------------------------------------------
    # ``projects/<name>.json`` is what the index reads: one small object per project
    # listing the files its records make servable. It is derived from records (and
    # re-derived by ``refinery index --full``), refreshed after every record write, and
    # written with compare-and-swap. Each refresh re-reads the records *after* reading
    # the summary, so the last refresh always reflects the last record write.
    def get_summary(self, name: str) -> ProjectSummary | None:
        got = self.blobs.get(project_key(name))
        return ProjectSummary.from_json(json.loads(got[0])) if got else None

    def summary_entry(self, record: BuildRecord | None) -> SummaryEntry | None:
        """What the index serves for ``record``: ``None`` unless its wheel is all there."""
        if not usable_record(record):
            return None
        assert record is not None and record.wheel is not None
        key = wheel_key(record.wheel.sha256, record.wheel.filename)
        meta = self.blobs.get(key + ".metadata")
        if meta is None or not self.blobs.exists(key):
            return None
        return SummaryEntry.make(record, meta[0])

    def refresh_summary(
        self,
        name: str,
        versions: list[tuple[str, str]] | None = None,
        *,
        known: dict[str, SummaryEntry | None] | None = None,
    ) -> bool:
        """Bring ``projects/<name>.json`` in line with the records. ``versions``: only
        these ``(version, python)`` records changed (``None``: re-derive them all).
        ``known`` supplies entries already derived. Returns whether it was written."""
        name = normalize_name(name)
        key = project_key(name)
        for attempt in range(CAS_RETRIES):
            _race_pause(attempt)
            got = self.blobs.get(key)
            current = ProjectSummary.from_json(json.loads(got[0])) if got else None
            files = dict(current.files) if current else {}
            if versions is None:
                wanted = {
                    k[len(f"records/{name}/") : -len(".json")]
                    for k in self.blobs.list(f"records/{name}/")
                    if k.endswith(".json")
                }
                files = {k: v for k, v in files.items() if k in wanted}
            else:
                wanted = {f"{v}/{p}" for v, p in versions}
            for rel in sorted(wanted):
                if known is not None and rel in known:
                    entry = known[rel]
                else:
                    version, _, python = rel.rpartition("/")
                    record = self.get_record(name, version, python)
                    old = files.get(rel)
                    if (
                        old is not None
                        and usable_record(record)
                        and record is not None
                        and record.wheel is not None
                        and record.wheel.sha256 == old.sha256
                    ):
                        entry = old.evolve_from(record)
                    else:
                        entry = self.summary_entry(record)
                if entry is None:
                    files.pop(rel, None)
                else:
                    files[rel] = entry
            if (current.files if current is not None else {}) == files:
                return False  # unchanged (and no empty summary for a project never served)
            summary = ProjectSummary(name, files)
            data = json.dumps(summary.to_json(), sort_keys=True, separators=(",", ":")).encode()
            try:
                self.blobs.put_if_match(key, data, got[1] if got else None)
            except ConflictError:
                continue
            return True
        raise ConflictError(f"{key}: gave up after {CAS_RETRIES} lost compare-and-swap races")

    def summaries(self) -> Iterator[tuple[str, str]]:
        """``(project name, change tag)`` of every summary, from one listing."""
        if isinstance(self.blobs, LocalBlobStore):
            for leaf, tag in self.blobs.flat_tags("projects/").items():
                if leaf.endswith(".json"):
                    yield leaf[: -len(".json")], tag
            return
        for key, tag in self.blobs.list_tags("projects/"):
            if key.endswith(".json"):
                yield key[len("projects/") : -len(".json")], tag

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


def _yanked(record: BuildRecord) -> str | None:
    """A record is yanked by its last ``yanked``/``unyanked`` event."""
    state: str | None = None
    for event in record.events:
        if event.kind == "yanked":
            state = event.message or "yanked"
        elif event.kind == "unyanked":
            state = None
    return state


def _requires_python(metadata: bytes) -> str | None:
    from email.parser import BytesHeaderParser

    value = BytesHeaderParser().parsebytes(metadata).get("Requires-Python")
    return str(value).strip() if value else None


@dataclass(frozen=True, slots=True)
class SummaryEntry:
    """One servable wheel of a project, as the index lists it."""

    version: str
    filename: str
    sha256: str
    size: int | None
    metadata_sha256: str
    requires_python: str | None = None
    yanked: str | None = None

    @classmethod
    def make(cls, record: BuildRecord, metadata: bytes) -> SummaryEntry:
        assert record.wheel is not None
        return cls(
            version=record.version,
            filename=record.wheel.filename,
            sha256=record.wheel.sha256,
            size=record.wheel.size,
            metadata_sha256=sha256_bytes(metadata),
            requires_python=_requires_python(metadata),
            yanked=_yanked(record),
        )

    def evolve_from(self, record: BuildRecord) -> SummaryEntry:
        """Same wheel, record changed: only the yanked state can differ."""
        from dataclasses import replace

        return replace(self, yanked=_yanked(record))

    def to_json(self) -> list[object]:
        return [
            self.version,
            self.filename,
            self.sha256,
            self.size,
            self.metadata_sha256,
            self.requires_python,
            self.yanked,
        ]

    @classmethod
    def from_json(cls, row: list[object]) -> SummaryEntry:
        return cls(*row)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    """``projects/<name>.json``: servable wheels keyed by ``<version>/<python>``."""

    name: str
    files: dict[str, SummaryEntry]
    schema: int = SUMMARY_SCHEMA

    def to_json(self) -> dict[str, object]:
        return {
            "schema": self.schema,
            "name": self.name,
            "files": {k: v.to_json() for k, v in sorted(self.files.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ProjectSummary:
        if data.get("schema") != SUMMARY_SCHEMA:
            raise StoreError(f"project summary: unsupported schema {data.get('schema')!r}")
        files = data["files"]
        assert isinstance(files, dict)
        return cls(str(data["name"]), {k: SummaryEntry.from_json(v) for k, v in files.items()})


class StoreLookup(Protocol):
    """What the planner may ask of the store (read-only)."""

    def get_record(self, name: str, version: str, python: str) -> BuildRecord | None: ...


def usable_record(record: BuildRecord | None) -> bool:
    return record is not None and record.status is NodeStatus.BUILT and record.wheel is not None
