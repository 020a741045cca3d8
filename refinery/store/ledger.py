"""The ledger: the store's rules over any :class:`~refinery.store.blobs.BlobStore`.

Wheels and logs are written once; build records and project summaries are updated with
compare-and-swap, a lost race retried (never overwritten blindly); plans and inputs are
documents replaced whole. Every other stage asks :class:`Store` for what it needs (records,
summaries, logs, wheels, plans, index files): key names stay in :mod:`.layout`.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from refinery.core.clock import now
from refinery.core.errors import ConflictError, StoreError
from refinery.core.models import BuildRecord, InputRecord, Plan, WheelRef, normalize_name
from refinery.store import layout
from refinery.store.blobs import DEFAULT_STORE, BlobStore, open_blobs
from refinery.store.files import sha256_bytes, wheel_metadata
from refinery.store.s3 import S3Options
from refinery.store.summary import (
    ProjectSummary,
    SummaryEntry,
    entry_key,
    parse_entry_key,
    usable_record,
)

CAS_RETRIES = 30
CAS_BASE_DELAY = 0.002  # seconds; doubled per lost race, with full jitter
CAS_MAX_DELAY = 0.25

#: ``map``, or a thread pool's: how :meth:`Store.repair_summaries` visits projects.
Mapper = Callable[[Callable[[str], bool], list[str]], Iterable[bool]]


def _race_pause(attempt: int) -> None:
    """Back off before retrying a lost compare-and-swap: writers that keep colliding
    spread out instead of retrying in lockstep until they give up."""
    if attempt:
        time.sleep(random.uniform(0, min(CAS_MAX_DELAY, CAS_BASE_DELAY * 2**attempt)))


class StoreLookup(Protocol):
    """What the planner may ask of the store (read-only)."""

    def get_record(self, name: str, version: str, python: str) -> BuildRecord | None: ...


@dataclass(frozen=True, slots=True)
class PlannedMark:
    """``commit`` was planned (into ``plan_id``) at ``at`` (an ISO timestamp)."""

    commit: str
    plan_id: str
    at: str

    def to_json(self) -> dict[str, str]:
        return {"commit": self.commit, "plan_id": self.plan_id, "at": self.at}

    @classmethod
    def from_json(cls, doc: dict[str, str]) -> PlannedMark:
        return cls(str(doc["commit"]), str(doc.get("plan_id") or ""), str(doc["at"]))


@dataclass
class Store:
    """Ledger rules over any :class:`BlobStore`."""

    blobs: BlobStore

    @classmethod
    def open(cls, url: str | None = None, *, s3: S3Options | None = None) -> Store:
        """The store at ``url`` (a folder, ``file://…`` or ``s3://…``; ``None``:
        :data:`DEFAULT_STORE`)."""
        return cls(open_blobs(url or DEFAULT_STORE, s3=s3))

    @property
    def url(self) -> str:
        return self.blobs.url

    @property
    def local(self) -> bool:
        """Whether the store is a folder on this machine (reads are cheap, links work)."""
        return self.blobs.local_path("") is not None

    def _compare_and_swap(self, key: str, write: Callable[[bytes | None], bytes | None]) -> bool:
        """Read ``key``, let ``write`` turn its bytes (``None``: absent) into new ones
        (``None``: leave it), write them if nobody changed ``key`` meanwhile; a lost race
        is retried from the read. Returns whether it wrote."""
        for attempt in range(CAS_RETRIES):
            _race_pause(attempt)
            got = self.blobs.get(key)
            data = write(got[0] if got else None)
            if data is None:
                return False
            try:
                self.blobs.put_if_match(key, data, got[1] if got else None)
            except ConflictError:
                continue
            return True
        raise ConflictError(f"{key}: gave up after {CAS_RETRIES} lost compare-and-swap races")

    # --- wheels -----------------------------------------------------------------
    def put_wheel(self, path: Path) -> WheelRef:
        """Store a wheel and its metadata, content-addressed. Idempotent for same bytes."""
        data = path.read_bytes()
        digest = sha256_bytes(data)
        metadata = wheel_metadata(path)
        # The metadata goes first: a wheel is visible only once its metadata exists.
        self.blobs.put_if_absent(layout.metadata_key(digest, path.name), metadata)
        self.blobs.put_if_absent(layout.wheel_key(digest, path.name), data)
        return WheelRef(filename=path.name, sha256=digest, size=len(data))

    def get_wheel(self, ref: WheelRef) -> bytes | None:
        got = self.blobs.get(layout.wheel_key(ref.sha256, ref.filename))
        return got[0] if got else None

    @staticmethod
    def wheel_path(sha256: str, filename: str) -> str:
        """Where a wheel sits, relative to the store root (an index beside a copy of the
        store's ``wheels/`` links to it by this path); its metadata is this + ``.metadata``."""
        return layout.wheel_key(sha256, filename)

    def wheels_folder(self) -> Path | None:
        """The folder of a local store's wheels (created if need be); ``None`` for S3."""
        folder = self.blobs.local_path(layout.WHEELS.rstrip("/"))
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    def export_wheel(self, sha256: str, filename: str, root: Path) -> int:
        """Copy a wheel and its metadata (metadata first, as stored) to ``root`` under
        :meth:`wheel_path`, unless there already. Returns how many files were written."""
        written = 0
        wheel = layout.wheel_key(sha256, filename)
        for key in (layout.metadata_key(sha256, filename), wheel):
            dest = root / key
            if dest.exists():
                continue
            got = self.blobs.get(key)
            if got is None:
                raise StoreError(f"{self.url}: {key} is listed by a project summary but missing")
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}")
            tmp.write_bytes(got[0])
            tmp.replace(dest)
            written += 1
        return written

    # --- logs -------------------------------------------------------------------
    def put_log(self, name: str, version: str, python: str, attempt: int, data: bytes) -> str:
        key = layout.log_key(name, version, python, attempt)
        if not self.blobs.put_if_absent(key, data):
            existing = self.blobs.get(key)
            if existing is None or existing[0] != data:
                raise ConflictError(f"{key}: a different log for this attempt is already stored")
        return key

    @staticmethod
    def is_log(key: str | None) -> bool:
        """Whether ``key`` (an attempt's ``log``) names a log of this store's layout."""
        return layout.is_log_key(key)

    def get_log(self, key: str) -> bytes | None:
        """The log an attempt names (``None``: absent, or not a log key)."""
        if not layout.is_log_key(key):
            return None
        got = self.blobs.get(key)
        return got[0] if got else None

    def log_file(self, key: str) -> Path | None:
        """A local store's file for the log ``key``; ``None`` for S3 (or not a log key)."""
        return self.blobs.local_path(key) if layout.is_log_key(key) else None

    def log_ids(self, project: str | None = None) -> Iterator[layout.LogId]:
        """Every stored log (of ``project`` only, when given), in no promised order."""
        prefix = layout.logs_of(project) if project is not None else layout.LOGS
        for key in self.blobs.list(prefix):
            found = layout.parse_log_key(key)
            if found is not None:
                yield found

    def log_location(self, key: str) -> str:
        """Where a person finds the log ``key``: a local store's file, else its URL."""
        path = self.log_file(key)
        return str(path) if path is not None else f"{self.url.rstrip('/')}/{key}"

    @staticmethod
    def logs_of(name: str) -> str:
        """The folder (relative to the store root) of every log of project ``name``."""
        return layout.logs_of(name).rstrip("/")

    # --- records ----------------------------------------------------------------
    def _parse_record(self, key: str, data: bytes) -> BuildRecord:
        try:
            return BuildRecord.from_json(json.loads(data))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self.url}/{key}: not a build record: {exc}") from None

    def get_record(self, name: str, version: str, python: str) -> BuildRecord | None:
        key = layout.record_key(name, version, python)
        got = self.blobs.get(key)
        return self._parse_record(key, got[0]) if got else None

    def update_record(
        self,
        name: str,
        version: str,
        python: str,
        change: Callable[[BuildRecord | None], BuildRecord],
    ) -> BuildRecord:
        """Read, apply ``change``, write back with compare-and-swap; retry lost races.
        The project's summary is refreshed afterwards."""
        key = layout.record_key(name, version, python)
        written: list[BuildRecord] = []

        def write(data: bytes | None) -> bytes:
            current = self._parse_record(key, data) if data is not None else None
            written[:] = [change(current).evolve(updated=now())]
            return json.dumps(written[0].to_json(), indent=1, sort_keys=True).encode()

        self._compare_and_swap(key, write)
        self.refresh_summary(name, versions=[(version, python)])
        return written[0]

    def record_ids(self, project: str | None = None) -> Iterator[layout.RecordId]:
        """``(name, version, python)`` of every record (of ``project``), from one listing."""
        prefix = layout.records_of(project) if project is not None else layout.RECORDS
        for key in self.blobs.list(prefix):
            rid = layout.parse_record_key(key)
            if rid is not None:
                yield rid

    def stored_records(self) -> Iterator[tuple[BuildRecord, str]]:
        """Every record with the sha256 of its stored bytes (changes when it does)."""
        for key in self.blobs.list(layout.RECORDS):
            if layout.parse_record_key(key) is None:
                continue
            got = self.blobs.get(key)
            if got is not None:
                yield self._parse_record(key, got[0]), sha256_bytes(got[0])

    def records(self) -> Iterator[BuildRecord]:
        for record, _digest in self.stored_records():
            yield record

    # --- project summaries ------------------------------------------------------
    # ``projects/<name>.json`` is what the index reads: one small object per project
    # listing the files its records make servable. It is derived from records (and
    # re-derived by ``refinery index --full``), refreshed after every record write, and
    # written with compare-and-swap. Each refresh re-reads the records *after* reading
    # the summary, so the last refresh always reflects the last record write.
    def get_summary(self, name: str) -> ProjectSummary | None:
        got = self.blobs.get(layout.project_key(name))
        return ProjectSummary.from_json(json.loads(got[0])) if got else None

    def summary_entry(self, record: BuildRecord | None) -> SummaryEntry | None:
        """What the index serves for ``record``: ``None`` unless its wheel is all there."""
        if not usable_record(record):
            return None
        assert record is not None and record.wheel is not None
        key = layout.wheel_key(record.wheel.sha256, record.wheel.filename)
        meta = self.blobs.get(key + layout.METADATA)
        if meta is None or not self.blobs.exists(key):
            return None
        return SummaryEntry.make(record, meta[0])

    def _entry(
        self, name: str, rel: str, old: SummaryEntry | None, *, verify: bool
    ) -> SummaryEntry | None:
        version, python = parse_entry_key(rel)
        record = self.get_record(name, version, python)
        if (
            old is not None
            and record is not None
            and old.reusable_for(record)
            and (not verify or self.blobs.exists(layout.wheel_key(old.sha256, old.filename)))
        ):
            return old.evolve_from(record)
        return self.summary_entry(record)

    def refresh_summary(
        self,
        name: str,
        versions: Iterable[tuple[str, str]] | None = None,
        *,
        listed: Iterable[str] | None = None,
        verify: bool = False,
    ) -> bool:
        """Bring ``projects/<name>.json`` in line with the records. ``versions``: only
        these ``(version, python)`` records changed; ``None``: all of them, which are
        ``listed`` (``<version>/<python>``, from one listing of every record) or listed
        now. ``verify``: reuse an entry only while its wheel is still stored (a full
        index run). Returns whether the summary was written."""
        name = normalize_name(name)
        changed = None if versions is None else {entry_key(v, p) for v, p in versions}
        known = None if listed is None else set(listed)

        def write(data: bytes | None) -> bytes | None:
            current = ProjectSummary.from_json(json.loads(data)) if data else None
            have = current.files if current is not None else {}
            files = dict(have)
            wanted = changed
            if wanted is None:
                wanted = known
                if wanted is None:
                    wanted = {entry_key(r.version, r.python) for r in self.record_ids(name)}
                files = {k: v for k, v in files.items() if k in wanted}
            for rel in sorted(wanted):
                entry = self._entry(name, rel, files.get(rel), verify=verify)
                if entry is None:
                    files.pop(rel, None)
                else:
                    files[rel] = entry
            if have == files:
                return None  # unchanged (and no empty summary for a project never served)
            summary = ProjectSummary(name, files).to_json()
            return json.dumps(summary, sort_keys=True, separators=(",", ":")).encode()

        return self._compare_and_swap(layout.project_key(name), write)

    def summaries(self) -> Iterator[tuple[str, str]]:
        """``(project name, change tag)`` of every summary, from one listing."""
        for key, tag in self.blobs.list_tags(layout.PROJECTS):
            name = layout.parse_project_key(key)
            if name is not None:
                yield name, tag

    def repair_summaries(self, mapper: Mapper = map) -> list[str]:
        """Re-derive every summary from the records (checking that reused entries' wheels
        are still stored) and remove summaries without records. Returns the projects
        whose summary changed."""
        by_project: dict[str, list[str]] = {}
        for rid in self.record_ids():
            by_project.setdefault(rid.name, []).append(entry_key(rid.version, rid.python))
        existing = {name for name, _tag in self.summaries()}

        def derive(name: str) -> bool:
            return self.refresh_summary(name, listed=by_project[name], verify=True)

        names = sorted(by_project)
        repaired = [n for n, fixed in zip(names, mapper(derive, names), strict=True) if fixed]
        for name in sorted(existing - set(by_project)):
            self.blobs.delete(layout.project_key(name))  # without records it serves nothing
            repaired.append(name)
        return repaired

    # --- plans and inputs -------------------------------------------------------
    def put_plan(self, plan: Plan) -> str:
        key = layout.plan_key(plan.plan_id)
        self.blobs.put(key, json.dumps(plan.to_json(), indent=1).encode())
        return key

    def get_plan(self, plan_id: str) -> Plan | None:
        got = self.blobs.get(layout.plan_key(plan_id))
        return Plan.from_json(json.loads(got[0])) if got else None

    def plan_file(self, plan_id: str) -> Path | None:
        """A local store's file of the stored plan ``plan_id``; ``None`` for S3."""
        path = self.blobs.local_path(layout.plan_key(plan_id))
        return path if path is not None and path.is_file() else None

    def plan_ids(self) -> Iterator[str]:
        for key in self.blobs.list(layout.PLANS):
            plan_id = layout.parse_plan_key(key)
            if plan_id is not None:
                yield plan_id

    def put_input(self, record: InputRecord) -> None:
        key = layout.input_key(record.input_id)
        self.blobs.put(key, json.dumps(record.to_json(), indent=1).encode())

    def inputs(self) -> Iterator[InputRecord]:
        for key in self.blobs.list(layout.INPUTS):
            got = self.blobs.get(key)
            if got:
                yield InputRecord.from_json(json.loads(got[0]))

    # --- the last planned commit (GitOps) ---------------------------------------------
    def get_planned(self) -> PlannedMark | None:
        """The last commit whose changed inputs were planned (pushes plan from here on)."""
        got = self.blobs.get(layout.PLANNED)
        return PlannedMark.from_json(json.loads(got[0])) if got else None

    def put_planned(self, mark: PlannedMark) -> bool:
        """Record ``mark`` unless a later one (by ``at``) is already there; whether it was
        written. Compare-and-swap: publishes in any order end at the latest mark."""

        def write(data: bytes | None) -> bytes | None:
            if data is not None and PlannedMark.from_json(json.loads(data)).at >= mark.at:
                return None
            return json.dumps(mark.to_json(), indent=1, sort_keys=True).encode()

        return self._compare_and_swap(layout.PLANNED, write)

    # --- uploaded index files -------------------------------------------------------
    def get_index_file(self, rel: str) -> bytes | None:
        """An index file uploaded by ``refinery index --upload`` (``rel`` below ``simple/``)."""
        got = self.blobs.get(layout.index_key(rel))
        return got[0] if got else None

    def put_index_file(self, rel: str, data: bytes) -> None:
        self.blobs.put(layout.index_key(rel), data)

    def delete_index_file(self, rel: str) -> None:
        self.blobs.delete(layout.index_key(rel))
