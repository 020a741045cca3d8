"""A client for the simple repository API (PEP 691 JSON, PEP 503 HTML fallback).

Concurrent (one connection pool shared by worker threads), retrying with backoff on
timeouts, connection errors and 5xx/429, and caching on disk: project pages for a
freshness window (PyPI's own ``max-age`` is 600 s), immutable things — PEP 658
metadata and sdist build requirements — forever, keyed by file hash.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any, TypeVar, cast
from urllib.parse import urldefrag, urljoin

import urllib3
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

from refinery.core.errors import NetworkError
from refinery.core.models import FileRef
from refinery.core.versions import canonical
from refinery.core.vocab import SIMPLE_JSON, DistKind
from refinery.upstream.sdist import CHUNK, build_requires_from_sdist, top_level_file

_T = TypeVar("_T")
_R = TypeVar("_R")

DEFAULT_INDEX = "https://pypi.org/simple/"
JSON_TYPE = SIMPLE_JSON
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
CACHE_SCHEMA = 2


@dataclass(frozen=True, slots=True)
class DistFile:
    filename: str
    url: str
    version: str
    kind: DistKind
    sha256: str | None
    requires_python: str | None
    yanked: bool
    metadata: bool  # PEP 658/714 core metadata offered
    size: int | None = None

    def ref(self) -> FileRef:
        return FileRef(self.filename, self.url, self.sha256, self.size)


class Project:
    """A project's files, indexed by (normalised) version on first use."""

    __slots__ = ("_by_version", "files", "name")

    def __init__(self, name: str, files: tuple[DistFile, ...]) -> None:
        self.name = name
        self.files = files
        self._by_version: dict[str, list[DistFile]] | None = None

    def by_version(self) -> dict[str, list[DistFile]]:
        if self._by_version is None:
            out: dict[str, list[DistFile]] = {}
            for f in self.files:
                out.setdefault(f.version, []).append(f)
            self._by_version = out
        return self._by_version

    def versions(self) -> set[str]:
        return set(self.by_version())

    def files_for(self, version: str) -> list[DistFile]:
        """Files of ``version``, comparing normalised versions (``1.0`` == ``1.0.0``)."""
        by_version = self.by_version()
        if version in by_version:
            return by_version[version]
        want = canonical(version)
        return [f for raw, files in by_version.items() if canonical(raw) == want for f in files]


_SEPARATORS = re.compile(r"[-_.]+")
_ABSOLUTE = ("https://", "http://")


def _classify(filename: str, project: str) -> tuple[DistKind, str] | None:
    """("wheel"|"sdist", version) for a distribution file name, else None.

    A fast path for the common shapes (hundreds of thousands of files go through
    here on a cold plan); anything unusual is left to ``packaging``."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        if len(parts) in (5, 6):
            return "wheel", parts[1]
        try:
            return "wheel", str(parse_wheel_filename(filename)[1])
        except (InvalidWheelFilename, InvalidVersion):
            return None
    if filename.endswith(".tar.gz"):
        stem = filename[:-7]
    elif filename.endswith(".zip"):
        stem = filename[:-4]
    else:
        return None
    name, sep, version = stem.rpartition("-")
    if sep and _SEPARATORS.sub("-", name).lower() == project:
        return "sdist", version
    try:
        parsed_name, parsed_version = parse_sdist_filename(filename)
    except (InvalidSdistFilename, InvalidVersion):
        return None
    if canonicalize_name(parsed_name) == project:
        return "sdist", str(parsed_version)
    return None


def parse_project_json(name: str, base_url: str, data: dict[str, Any]) -> Project:
    files: list[DistFile] = []
    append = files.append
    for f in data.get("files", ()):
        filename = f["filename"]
        kind = _classify(filename, name)
        if kind is None:
            continue
        url = f["url"]
        if not url.startswith(_ABSOLUTE):
            url = urljoin(base_url, url)
        hashes = f.get("hashes")
        append(
            DistFile(
                filename,
                url,
                kind[1],
                kind[0],
                hashes.get("sha256") if hashes else None,
                f.get("requires-python") or None,
                bool(f.get("yanked", False)),
                bool(f.get("core-metadata", f.get("dist-info-metadata", False))),
                f.get("size"),
            )
        )
    return Project(name, tuple(files))


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None


def parse_project_html(name: str, base_url: str, html: str) -> Project:
    """PEP 503 page into the same shape as the JSON API gives."""
    parser = _AnchorParser()
    parser.feed(html)
    files: list[dict[str, Any]] = []
    for attrs, text in parser.anchors:
        href = attrs.get("href") or ""
        url, frag = urldefrag(href)
        hashes = {}
        if frag.startswith("sha256="):
            hashes["sha256"] = frag.split("=", 1)[1]
        meta = attrs.get("data-core-metadata") or attrs.get("data-dist-info-metadata")
        files.append(
            {
                "filename": text or url.rsplit("/", 1)[-1],
                "url": url,
                "hashes": hashes,
                "requires-python": attrs.get("data-requires-python"),
                "yanked": "data-yanked" in attrs,
                "core-metadata": bool(meta) and meta != "false",
            }
        )
    return parse_project_json(name, base_url, {"files": files})


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexOptions:
    """How the index client behaves: page freshness (PyPI's own ``max-age`` is 600 s),
    concurrency, read timeout, retries on timeouts/5xx/429, and ``refresh`` (ignore
    cached pages)."""

    ttl: float = 600.0
    workers: int = 32
    timeout: float = 30.0
    retries: int = 4
    refresh: bool = False

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.retries < 0:
            raise ValueError("retries must not be negative")


class IndexClient:
    """Read a simple-API index. Thread-safe; use :meth:`map` for concurrency.

    ``cache_dir`` is the folder for index caches (``CacheRoot.index``); each index URL
    gets its own folder below it."""

    def __init__(
        self,
        index_url: str = DEFAULT_INDEX,
        *,
        cache_dir: Path,
        options: IndexOptions | None = None,
    ) -> None:
        opts = options or IndexOptions()
        self.index_url = index_url.rstrip("/") + "/"
        key = hashlib.sha256(self.index_url.encode()).hexdigest()[:16]
        self.cache_dir = cache_dir / key
        self.ttl = opts.ttl
        self.workers = opts.workers
        self.refresh = opts.refresh
        self.http = urllib3.PoolManager(
            num_pools=8,
            maxsize=opts.workers,
            timeout=urllib3.Timeout(connect=10.0, read=opts.timeout),
            retries=urllib3.Retry(
                total=opts.retries,
                backoff_factor=0.5,
                status_forcelist=(429, 500, 502, 503, 504),
                allowed_methods=frozenset({"GET", "HEAD"}),
                raise_on_status=False,
                respect_retry_after_header=True,
            ),
        )
        self._memo: dict[str, Project | None] = {}
        self._inflight: dict[str, Future[tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    # --- plumbing ---------------------------------------------------------------
    def _request(
        self, url: str, headers: dict[str, str] | None = None, *, preload: bool = True
    ) -> urllib3.BaseHTTPResponse:
        try:
            return self.http.request("GET", url, headers=headers, preload_content=preload)
        except urllib3.exceptions.HTTPError as exc:
            raise NetworkError(f"cannot reach {url} ({_why(exc)})") from None

    def _get(self, url: str, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        resp = self._request(url, headers)
        if resp.status >= 500 or resp.status == 429:
            raise NetworkError(f"{url}: HTTP {resp.status} after retries")
        return resp

    def _cache_path(self, *parts: str) -> Path:
        return self.cache_dir.joinpath(*parts)

    def _kept(self, kind: str, file: FileRef | DistFile) -> tuple[str, Path, Any]:
        """(key, cache file, cached JSON or ``None``) of something immutable about
        ``file``, kept forever under its hash (its URL's when the index gives none)."""
        key = file.sha256 or hashlib.sha256(file.url.encode()).hexdigest()
        path = self._cache_path(kind, f"{key}.json")
        try:
            return key, path, json.loads(path.read_bytes())
        except (OSError, ValueError):
            return key, path, None

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def map(self, fn: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        todo = list(items)
        if len(todo) <= 1:
            return [fn(i) for i in todo]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(todo))) as pool:
            return list(pool.map(fn, todo))

    # --- project pages ----------------------------------------------------------
    def project(self, name: str) -> Project | None:
        """The project's files, or ``None`` if the index does not know it."""
        name = canonicalize_name(name)
        with self._lock:
            if name in self._memo:
                return self._memo[name]
        project = self._project(name)
        with self._lock:
            self._memo[name] = project
        return project

    def _project(self, name: str) -> Project | None:
        path = self._cache_path("projects", f"{name}.json")
        cached: dict[str, Any] | None = None
        try:
            cached = json.loads(path.read_bytes())
            if cached.get("schema") != CACHE_SCHEMA:
                cached = None
        except (OSError, ValueError):
            cached = None
        if cached and not self.refresh and time.time() - path.stat().st_mtime < self.ttl:
            return self._from_cache(name, cached)
        url = f"{self.index_url}{name}/"
        headers = {"Accept": ACCEPT}
        if cached and cached.get("etag"):
            headers["If-None-Match"] = cached["etag"]
        resp = self._get(url, headers)
        if resp.status == 304 and cached:
            cached["fetched"] = time.time()
            self._write_atomic(path, json.dumps(cached).encode())
            return self._from_cache(name, cached)
        if resp.status == 404:
            entry: dict[str, Any] = {"schema": CACHE_SCHEMA, "fetched": time.time(), "files": None}
            self._write_atomic(path, json.dumps(entry).encode())
            return None
        if resp.status != 200:
            raise NetworkError(f"{url}: HTTP {resp.status}")
        base = url
        ctype = resp.headers.get("Content-Type", "")
        if JSON_TYPE in ctype or ctype.startswith("application/json"):
            project = parse_project_json(name, base, json.loads(resp.data))
        else:
            project = parse_project_html(name, base, resp.data.decode("utf-8", "replace"))
        entry = {
            "schema": CACHE_SCHEMA,
            "fetched": time.time(),
            "etag": resp.headers.get("ETag"),
            "files": [
                [
                    f.filename,
                    f.url,
                    f.version,
                    f.kind,
                    f.sha256,
                    f.requires_python,
                    f.yanked,
                    f.metadata,
                    f.size,
                ]
                for f in project.files
            ],
        }
        self._write_atomic(path, json.dumps(entry).encode())
        return project

    @staticmethod
    def _from_cache(name: str, entry: dict[str, Any]) -> Project | None:
        if entry["files"] is None:
            return None
        return Project(name, tuple(DistFile(*row) for row in entry["files"]))

    def projects(self, names: Iterable[str]) -> dict[str, Project | None]:
        names = sorted({canonicalize_name(n) for n in names})
        return dict(zip(names, self.map(self.project, names), strict=True))

    # --- files ------------------------------------------------------------------
    def download(self, file: DistFile) -> bytes:
        resp = self._get(file.url)
        if resp.status != 200:
            raise NetworkError(f"{file.url}: HTTP {resp.status}")
        data = bytes(resp.data)
        if file.sha256 and hashlib.sha256(data).hexdigest() != file.sha256:
            raise NetworkError(f"{file.filename}: sha256 mismatch with the index")
        return data

    def metadata(self, file: DistFile) -> dict[str, list[str]]:
        """Core metadata fields (PEP 658 when offered, else from the file itself)."""
        _key, path, cached = self._kept("metadata", file)
        if cached is not None:
            return dict(cached)
        raw: bytes | None = None
        if file.metadata:
            resp = self._get(file.url + ".metadata")
            if resp.status == 200:
                raw = bytes(resp.data)
        if raw is None:
            raw = _metadata_from_file(self.download(file), file.filename)
        msg = BytesParser().parsebytes(raw)
        fields: dict[str, list[str]] = {}
        for k, v in msg.items():
            fields.setdefault(k.lower(), []).append(str(v))
        self._write_atomic(path, json.dumps(fields).encode())
        return fields

    def build_requires(self, file: FileRef) -> tuple[str, ...]:
        """``[build-system].requires`` of an sdist; cached forever by its hash. Two
        callers asking for the same sdist at once share one download."""
        key, path, cached = self._kept("build-requires", file)
        if cached is not None:
            return tuple(cached)
        with self._lock:
            running = self._inflight.get(key)
            if running is None:
                mine: Future[tuple[str, ...]] = Future()
                self._inflight[key] = mine
        if running is not None:
            return running.result()
        try:
            requires = self._read_build_requires(file)
            self._write_atomic(path, json.dumps(list(requires)).encode())
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        finally:
            with self._lock:
                del self._inflight[key]
        mine.set_result(requires)
        return requires

    def _read_build_requires(self, file: FileRef) -> tuple[str, ...]:
        resp = self._request(file.url, preload=False)
        try:
            if resp.status != 200:
                raise NetworkError(f"{file.url}: HTTP {resp.status}")
            try:
                return build_requires_from_sdist(cast(IO[bytes], resp), file.filename)
            except (zlib.error, ValueError, zipfile.BadZipFile, EOFError, OSError) as exc:
                raise NetworkError(f"{file.filename}: unreadable sdist ({exc})") from None
        finally:
            resp.close()


def _why(exc: Exception) -> str:
    """The root cause of a urllib3 failure in a few words ("Connection refused")."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip()
    return f"{reason.__class__.__name__}: {text}"[:200]


def _metadata_from_file(data: bytes, filename: str) -> bytes:
    if filename.endswith(".whl"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for n in zf.namelist():
                if re.fullmatch(r"[^/]+\.dist-info/METADATA", n):
                    return zf.read(n)
    elif filename.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for n in zf.namelist():
                if n.count("/") == 1 and n.endswith("/PKG-INFO"):
                    return zf.read(n)
    else:
        chunks = (data[i : i + CHUNK] for i in range(0, len(data), CHUNK))
        found = top_level_file(chunks, "PKG-INFO")
        if found is not None:
            return found
    raise NetworkError(f"{filename}: no core metadata inside")


__all__ = [
    "DEFAULT_INDEX",
    "DistFile",
    "IndexClient",
    "IndexOptions",
    "Project",
]
