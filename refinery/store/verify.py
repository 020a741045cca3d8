"""The store checked against itself (``refinery verify``): every wheel's bytes against the
sha256 its key names, every PEP 658 metadata file against the wheel it sits beside, every
record and project summary against the wheels they name, and every uploaded index page
(``simple/``) against the files it links — links resolve, hashes verify.

A tampered or truncated object is a :class:`Problem`; the index never links a wheel that
:func:`wheel_problem` finds at fault (``refinery.index.build`` asks before rendering).
"""

from __future__ import annotations

import contextlib
import io
import json
import posixpath
import re
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refinery.core.errors import StoreError
from refinery.store import layout
from refinery.store.blobs import BlobStore
from refinery.store.files import sha256_bytes, sha256_file
from refinery.store.ledger import Store
from refinery.store.summary import ProjectSummary

VERIFY_SCHEMA = 1
_HREF = re.compile(rb'href="([^"#]+)(?:#sha256=([0-9a-f]{64}))?"')


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One object at fault: its key and what is wrong, in one line."""

    key: str
    what: str

    def line(self) -> str:
        return f"{self.key}: {self.what}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``refinery verify`` checked and what it found."""

    url: str
    wheels: int
    metadata: int
    records: int
    summaries: int
    pages: int
    links: int
    problems: tuple[Problem, ...]
    schema: int = VERIFY_SCHEMA

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        counts = ("wheels", "metadata", "records", "summaries", "pages", "links")
        return {
            "schema": self.schema,
            "url": self.url,
            **{k: getattr(self, k) for k in counts},
            "ok": self.ok,
            "problems": [{"key": p.key, "what": p.what} for p in self.problems],
        }


def _metadata_of(data: bytes) -> bytes | None:
    """A wheel's ``.dist-info/METADATA`` from its bytes; ``None`` if it is not a wheel."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                parts = info.filename.split("/")
                if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                    return zf.read(info)
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return None


def _digest(blobs: BlobStore, key: str) -> str | None:
    """The sha256 of the object at ``key`` (a local file is hashed in place)."""
    path = blobs.local_path(key)
    if path is not None:
        try:
            return sha256_file(path)
        except (FileNotFoundError, IsADirectoryError):
            return None
    got = blobs.get(key)
    return sha256_bytes(got[0]) if got is not None else None


def wheel_problem(
    blobs: BlobStore, sha256: str, filename: str, metadata_sha256: str | None = None
) -> str | None:
    """Why the index must not link the wheel ``sha256``/``filename`` (``None``: it may):
    missing, bytes that do not hash to ``sha256``, or metadata absent or other than
    ``metadata_sha256`` (when given)."""
    got = _digest(blobs, layout.wheel_key(sha256, filename))
    if got is None:
        return "wheel missing"
    if got != sha256:
        return f"wheel bytes hash to {got}, not the sha256 its key names"
    meta = _digest(blobs, layout.metadata_key(sha256, filename))
    if meta is None:
        return "PEP 658 metadata missing"
    if metadata_sha256 is not None and meta != metadata_sha256:
        return f"metadata hashes to {meta}, not the recorded {metadata_sha256}"
    return None


@dataclass
class _Seen:
    """What the wheel pass found: verified wheels and metadata digests, by key."""

    wheels: dict[str, str] = field(default_factory=dict)  # wheel key -> "" ok / problem
    metadata: dict[str, str] = field(default_factory=dict)  # metadata key -> sha256
    problems: list[Problem] = field(default_factory=list)


def _check_wheel(blobs: BlobStore, key: str) -> tuple[str, str | None, str | None]:
    """One wheel: (its problem or "", its metadata's sha256, the metadata problem)."""
    wk = layout.parse_wheel_key(key)
    assert wk is not None
    got = blobs.get(key)
    if got is None:
        return "wheel missing", None, None
    data = got[0]
    if sha256_bytes(data) != wk.sha256:
        return f"wheel bytes hash to {sha256_bytes(data)}, not the sha256 its key names", None, None
    meta = blobs.get(layout.metadata_key(wk.sha256, wk.filename))
    if meta is None:
        return "", None, "PEP 658 metadata missing"
    inner = _metadata_of(data)
    if inner is None:
        return "not a wheel (no .dist-info/METADATA)", None, None
    if inner != meta[0]:
        return "", sha256_bytes(meta[0]), "metadata file differs from the wheel's METADATA"
    return "", sha256_bytes(meta[0]), None


def _wheels(store: Store, workers: int) -> _Seen:
    seen = _Seen()
    keys = []
    for key in store.blobs.list(layout.WHEELS):
        wk = layout.parse_wheel_key(key)
        if wk is not None and not wk.metadata and not wk.filename.endswith(layout.PROVENANCE):
            keys.append(key)
    keys.sort()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(lambda k: _check_wheel(store.blobs, k), keys))
    for key, (problem, meta_sha, meta_problem) in zip(keys, results, strict=True):
        wk = layout.parse_wheel_key(key)
        assert wk is not None
        seen.wheels[key] = problem
        mkey = layout.metadata_key(wk.sha256, wk.filename)
        if problem:
            seen.problems.append(Problem(key, problem))
        if meta_sha is not None:
            seen.metadata[mkey] = meta_sha
        if meta_problem:
            seen.problems.append(Problem(mkey, meta_problem))
    return seen


def _records(store: Store, seen: _Seen) -> int:
    logs = set(store.blobs.list(layout.LOGS))
    count = 0
    for rid in sorted(store.record_ids()):
        key = layout.record_key(*rid)
        count += 1
        try:
            record = store.get_record(*rid)
        except StoreError as exc:
            seen.problems.append(Problem(key, f"not a build record ({exc})"))
            continue
        if record is None:
            continue
        if record.wheel is not None:
            wkey = layout.wheel_key(record.wheel.sha256, record.wheel.filename)
            if wkey not in seen.wheels:
                seen.problems.append(Problem(key, f"names {record.wheel.filename}, not stored"))
            elif seen.wheels[wkey]:
                seen.problems.append(
                    Problem(key, f"names {wkey}, which fails: {seen.wheels[wkey]}")
                )
        for attempt in record.attempts:
            if attempt.log and store.is_log(attempt.log) and attempt.log not in logs:
                seen.problems.append(
                    Problem(key, f"attempt {attempt.n}: log {attempt.log} missing")
                )
    return count


def _summaries(store: Store, seen: _Seen) -> int:
    count = 0
    for key in sorted(store.blobs.list(layout.PROJECTS)):
        name = layout.parse_project_key(key)
        got = store.blobs.get(key) if name is not None else None
        if got is None:
            continue
        count += 1
        try:
            summary = ProjectSummary.from_json(json.loads(got[0]))
        except (ValueError, KeyError, TypeError, AssertionError, StoreError) as exc:
            seen.problems.append(Problem(key, f"not a project summary ({exc})"))
            continue
        for entry in summary.files.values():
            wkey = layout.wheel_key(entry.sha256, entry.filename)
            mkey = layout.metadata_key(entry.sha256, entry.filename)
            if seen.wheels.get(wkey, "missing"):
                seen.problems.append(
                    Problem(key, f"lists {wkey}: {seen.wheels.get(wkey, 'missing')}")
                )
            elif seen.metadata.get(mkey) != entry.metadata_sha256:
                seen.problems.append(Problem(key, f"lists {mkey} with another sha256"))
    return count


def _page_links(page: dict[str, Any], html: bytes) -> Iterator[tuple[str, str | None, str | None]]:
    """``(url, sha256, metadata sha256)`` of every file a project page links, from its
    JSON and its HTML (the two must agree with the store, each on its own)."""
    for f in page.get("files", []):
        meta = f.get("core-metadata")
        yield (
            str(f["url"]),
            f.get("hashes", {}).get("sha256"),
            (meta.get("sha256") if isinstance(meta, dict) else None),
        )
    for url, sha in _HREF.findall(html):
        yield url.decode(), sha.decode() or None, None


def _check_link(seen: _Seen, page_key: str, link: tuple[str, str | None, str | None]) -> str | None:
    url, sha, meta_sha = link
    key = _link_key(page_key.removeprefix(layout.SIMPLE), url)
    if key is None:
        return None  # an upstream file of the overlay: not ours to check
    wk = layout.parse_wheel_key(key)
    if wk is None or wk.metadata:
        return f"links {url}, which is not a wheel of the store"
    problem = seen.wheels.get(key, "not stored")
    if problem:
        return f"links {url}: {problem}"
    if sha is not None and sha != wk.sha256:
        return f"links {url} with sha256 {sha}, not the file's"
    mkey = layout.metadata_key(wk.sha256, wk.filename)
    if meta_sha is not None and seen.metadata.get(mkey) != meta_sha:
        return f"links {url}.metadata with sha256 {meta_sha}, not the file's"
    return None


def _pages(store: Store, seen: _Seen) -> tuple[int, int]:
    """Uploaded index pages: the root lists pages that exist, pages link verified files."""
    blobs, pages, links = store.blobs, 0, 0
    keys = set(blobs.list(layout.SIMPLE))
    root = blobs.get(layout.index_key("index.json"))
    if root is not None:
        pages += 1
        for project in json.loads(root[0]).get("projects", []):
            name = project.get("name", "")
            links += 1
            if layout.index_key(f"{name}/index.json") not in keys:
                seen.problems.append(
                    Problem(layout.index_key("index.json"), f"lists {name}, no page")
                )
    for key in sorted(k for k in keys if k.endswith("/index.json") and k.count("/") == 2):
        got, html = blobs.get(key), blobs.get(key.removesuffix(".json") + ".html")
        if got is None:
            continue
        pages += 1
        try:
            page = json.loads(got[0])
        except ValueError:
            seen.problems.append(Problem(key, "not JSON"))
            continue
        for link in _page_links(page, html[0] if html else b""):
            links += 1
            problem = _check_link(seen, key, link)
            if problem:
                seen.problems.append(Problem(key, problem))
    return pages, links


def verify_store(store: Store, *, workers: int = 8) -> VerifyReport:
    """Check every wheel, metadata file, record, summary and uploaded index page."""
    seen = _wheels(store, workers)
    records = _records(store, seen)
    summaries = _summaries(store, seen)
    pages, links = _pages(store, seen)
    return VerifyReport(
        url=store.url,
        wheels=len(seen.wheels),
        metadata=len(seen.metadata),
        records=records,
        summaries=summaries,
        pages=pages,
        links=links,
        problems=tuple(sorted(set(seen.problems))),
    )


class WheelVerifier:
    """Whether the index may link a wheel (:func:`wheel_problem` finds nothing).

    A wheel that verified is remembered with the version tags of its two objects (S3:
    ETags; a folder: inode, size, mtime) in ``memo`` (a file beside the index), so a
    later run reads it again only when an object changed: one small listing per wheel
    instead of its bytes. ``refinery verify`` always reads everything."""

    def __init__(self, store: Store, memo: Path | None = None) -> None:
        self.store = store
        self.path = memo
        self.memo: dict[str, str] = {}
        if memo is not None:
            with contextlib.suppress(OSError, ValueError):
                self.memo = dict(json.loads(memo.read_bytes()))
        self.read = 0  # wheels whose bytes were read this run

    def __call__(self, sha256: str, filename: str, metadata_sha256: str | None) -> bool:
        wkey = layout.wheel_key(sha256, filename)
        mkey = layout.metadata_key(sha256, filename)
        tags = dict(self.store.blobs.list_tags(wkey.rsplit("/", 1)[0] + "/"))
        if wkey not in tags or mkey not in tags:
            return False
        tag = f"{tags[wkey]}|{tags[mkey]}|{metadata_sha256}"
        if self.memo.get(wkey) == tag:
            return True
        self.read += 1
        ok = wheel_problem(self.store.blobs, sha256, filename, metadata_sha256) is None
        if ok:
            self.memo[wkey] = tag
        return ok

    def save(self) -> None:
        """Keep what verified for the next run (written atomically)."""
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.memo, sort_keys=True))
        tmp.replace(self.path)


def _link_key(page_rel: str, url: str) -> str | None:
    """The store key a page's link names (``None``: an absolute URL, not ours)."""
    if "://" in url:
        return None
    page_key = layout.index_key(page_rel)
    return posixpath.normpath(posixpath.join(posixpath.dirname(page_key), url))


def missing_links(store: Store, page_rel: str, page: bytes) -> list[str]:
    """Keys a project page's JSON (``page_rel`` below ``simple/``) links — wheels and
    their PEP 658 metadata — that the store does not hold; metadata first."""
    missing = []
    for f in json.loads(page).get("files", []):
        key = _link_key(page_rel, str(f["url"]))
        if key is not None:
            missing += [k for k in (key + layout.METADATA, key) if not store.blobs.exists(k)]
    return missing
