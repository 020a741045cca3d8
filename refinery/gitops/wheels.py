"""Wheel upload, GitOps form: a committed list of wheels (``wheels/*.toml``).

A pull request adds an entry; ``refinery wheels check`` downloads it, verifies its sha256
and runs every check ``refinery ingest`` runs (zip safety, ``RECORD``, name and version,
s390x or pure tags, ``twine check``, no other bytes under a stored name) without storing
anything, and renders the verdict for the PR comment. On the default branch ``refinery
wheels ingest`` stores them: a wheel already stored with the same bytes is a no-op.

```toml
[[wheel]]
name = "pyzmq"
version = "26.2.0"
url = "https://example.org/pyzmq-26.2.0-cp311-cp311-manylinux_2_28_s390x.whl"
sha256 = "64 hex digits"
note = "built by the upstream's own s390x CI"       # optional: why

[[wheel]]
name = "grpcio"
version = "1.66.1"
release = { repo = "owner/name", tag = "v1.66.1", asset = "grpcio-1.66.1-cp311-….whl" }
sha256 = "…"
python = "3.11"                                      # optional: pure and abi3 wheels
```

Strict like ``refinery.toml``: an unknown key names the closest known one, every
problem is ``FILE:LINE: what``. Downloads are https only (plain http only to a loopback
address, and only when asked: tests serve wheels on 127.0.0.1); a redirect may not leave
those rules either.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import ipaddress
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from refinery.core.errors import ConflictError, InputError, RefineryError
from refinery.core.models import DEFAULT_PYTHON, normalize_name
from refinery.store.ingest import (
    CheckedWheel,
    IngestResult,
    RejectedWheel,
    check_wheel,
    ingest,
    refuse_other_bytes,
)
from refinery.store.ledger import Store

WHEELS_DIR = "wheels"
VERDICT_SCHEMA = 1
COMMENT_MARKER = "<!-- wheel-refinery:wheels -->"
ENTRY_KEYS = ("name", "version", "sha256", "url", "release", "python", "note")
RELEASE_KEYS = ("repo", "tag", "asset")
MAX_DOWNLOAD = 2 << 30  # bytes; a wheel list entry larger than this is refused
_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PYTHON = re.compile(r"3\.\d{1,2}")
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")


class WheelListError(InputError):
    """A wheel list is invalid: ``FILE:LINE: what``."""


class Refused(RefineryError):
    """One entry's wheel cannot be accepted; the message is the one-line reason."""

    exit_code = 1


# --- the list -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Release:
    """A GitHub release asset: ``<server>/<repo>/releases/download/<tag>/<asset>``."""

    repo: str
    tag: str
    asset: str


@dataclass(frozen=True, slots=True)
class WheelEntry:
    file: str
    line: int
    name: str  # normalised
    version: str
    sha256: str
    url: str = ""
    release: Release | None = None
    python: str = ""  # empty: the wheel's tags say, else the default
    note: str = ""

    @property
    def filename(self) -> str:
        if self.release is not None:
            return self.release.asset
        return urllib.parse.unquote(urllib.parse.urlsplit(self.url).path.rsplit("/", 1)[-1])

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def source_url(self, server_url: str = "https://github.com") -> str:
        if self.release is None:
            return self.url
        r = self.release
        quote = urllib.parse.quote
        return (
            f"{server_url.rstrip('/')}/{r.repo}/releases/download/"
            f"{quote(r.tag, safe='')}/{quote(r.asset, safe='')}"
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "line": self.line,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "filename": self.filename,
        }
        if self.release is not None:
            out["release"] = {"repo": self.release.repo, "tag": self.release.tag}
        else:
            out["url"] = self.url
        if self.note:
            out["note"] = self.note
        return out


def _closest(word: str, choices: Iterable[str]) -> str:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {found[0]!r}?)" if found else ""


@dataclass
class _Lines:
    """Where things are in the text of one list (tomllib gives no positions)."""

    text: str
    headers: list[int] = field(default_factory=list)  # line of each ``[[wheel]]``

    def __post_init__(self) -> None:
        for number, line in enumerate(self.text.splitlines(), start=1):
            if re.match(r"^\s*\[\[\s*wheel\s*\]\]", line):
                self.headers.append(number)

    def entry(self, index: int) -> int:
        return self.headers[index] if index < len(self.headers) else 1

    def key(self, index: int, key: str) -> int:
        """The line of ``key`` in entry ``index`` (its header when not found)."""
        start = self.entry(index)
        stop = self.headers[index + 1] if index + 1 < len(self.headers) else None
        lines = self.text.splitlines()
        for number in range(start, (stop or len(lines) + 1)):
            if re.match(rf'^\s*"?{re.escape(key)}"?\s*=', lines[number - 1]):
                return number
        return start

    def top(self, key: str) -> int | None:
        for number, line in enumerate(self.text.splitlines(), start=1):
            if re.match(rf'^\s*(\[+\s*"?{re.escape(key)}"?\s*\]|"?{re.escape(key)}"?\s*=)', line):
                return number
        return None


def _string(doc: Mapping[str, Any], key: str, fail: Callable[[str, str], Exception]) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise fail(key, f"{key} must be a non-empty string")
    return value.strip()


def _release(value: Any, fail: Callable[[str, str], Exception]) -> Release:
    if not isinstance(value, Mapping):
        raise fail("release", "release must be a table { repo, tag, asset }")
    for key in value:
        if key not in RELEASE_KEYS:
            raise fail("release", f"unknown key {key!r} in release{_closest(key, RELEASE_KEYS)}")
    repo, tag, asset = (_string(value, k, fail) for k in RELEASE_KEYS)
    if not _REPO.fullmatch(repo):
        raise fail("release", f"release.repo {repo!r}: want OWNER/NAME")
    if "/" in asset:
        raise fail("release", f"release.asset {asset!r}: a file name, not a path")
    return Release(repo, tag, asset)


def _url(value: str, fail: Callable[[str, str], Exception]) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise fail("url", f"url {value!r}: want an https:// URL")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise fail("url", f"url {value!r}: https only (plain http is refused)")
    return value


def _entry(doc: Any, index: int, path: str, lines: _Lines) -> WheelEntry:
    def fail(key: str, what: str) -> WheelListError:
        return WheelListError(what, path=path, line=lines.key(index, key))

    if not isinstance(doc, Mapping):
        raise WheelListError("each [[wheel]] must be a table", path=path, line=lines.entry(index))
    for key in doc:
        if key not in ENTRY_KEYS:
            raise fail(key, f"unknown key {key!r} in [[wheel]]{_closest(key, ENTRY_KEYS)}")
    name, version, sha = (_string(doc, k, fail) for k in ("name", "version", "sha256"))
    if not _SHA256.fullmatch(sha.lower()):
        raise fail("sha256", "sha256 must be 64 hex digits")
    if ("url" in doc) == ("release" in doc):
        raise fail("url", "give exactly one of url and release")
    url = _url(_string(doc, "url", fail), fail) if "url" in doc else ""
    release = _release(doc["release"], fail) if "release" in doc else None
    python = _string(doc, "python", fail) if "python" in doc else ""
    if python and not _PYTHON.fullmatch(python):
        raise fail("python", f"python {python!r}: want 3.N")
    note = _string(doc, "note", fail) if "note" in doc else ""
    entry = WheelEntry(
        path,
        lines.entry(index),
        normalize_name(name),
        version,
        sha.lower(),
        url=url,
        release=release,
        python=python,
        note=note,
    )
    _matches_filename(entry, name, fail)
    return entry


def _matches_filename(entry: WheelEntry, name: str, fail: Callable[[str, str], Exception]) -> None:
    key = "release" if entry.release is not None else "url"
    try:
        wname, wversion, _build, _tags = parse_wheel_filename(entry.filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise fail(key, f"{entry.filename!r} is not a wheel file name: {exc}") from None
    if canonicalize_name(wname) != canonicalize_name(name):
        raise fail("name", f"name {name!r} but the file is {entry.filename}")
    try:
        same = Version(entry.version) == wversion
    except InvalidVersion:
        same = False
    if not same:
        raise fail("version", f"version {entry.version!r} but the file is {entry.filename}")


def parse_wheel_list(data: bytes, path: str) -> list[WheelEntry]:
    """The entries of one list file: every problem is ``path:line: what``."""
    import tomllib

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise WheelListError("not valid UTF-8", path=path, line=line) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        where = int(at.group(1)) if at else None
        raise WheelListError(f"not TOML: {exc}", path=path, line=where) from None
    lines = _Lines(text)
    for key in doc:
        if key != "wheel":
            raise WheelListError(
                f"unknown key {key!r} at the top level{_closest(key, ['wheel'])}",
                path=path,
                line=lines.top(key),
            )
    items = doc.get("wheel", [])
    if not isinstance(items, list):
        raise WheelListError("wheel must be an array of tables: [[wheel]]", path=path, line=1)
    return [_entry(item, i, path, lines) for i, item in enumerate(items)]


def load_wheel_lists(files: Sequence[tuple[str, bytes]]) -> list[WheelEntry]:
    """Every entry of ``(path, bytes)`` lists; a wheel file named twice is an error."""
    entries: list[WheelEntry] = []
    seen: dict[str, WheelEntry] = {}
    for path, data in files:
        for entry in parse_wheel_list(data, path):
            first = seen.setdefault(entry.filename, entry)
            if first is not entry:
                raise WheelListError(
                    f"{entry.filename} is listed already at {first.where}",
                    path=entry.file,
                    line=entry.line,
                )
            entries.append(entry)
    return entries


# --- download ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FetchOptions:
    server_url: str = "https://github.com"  # release assets; GitHub Enterprise: its own
    allow_loopback_http: bool = False  # plain http to 127.0.0.1 / ::1 / localhost (tests)
    timeout: float = 60.0
    max_bytes: int = MAX_DOWNLOAD


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


def allowed_url(url: str, opts: FetchOptions) -> str | None:
    """Why ``url`` may not be fetched (``None``: it may)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return None if opts.allow_loopback_http else f"plain http refused: {url}"
    return f"https only: {url}"


class _Redirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, opts: FetchOptions) -> None:
        self.opts = opts

    def redirect_request(
        self, req: Any, fp: Any, code: Any, msg: Any, headers: Any, newurl: str
    ) -> Any:
        why = allowed_url(newurl, self.opts)
        if why is not None:
            raise Refused(f"redirected: {why}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _copy(src: BinaryIO, dest: Path, limit: int) -> str:
    digest = hashlib.sha256()
    size = 0
    with dest.open("wb") as out:
        while chunk := src.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise Refused(f"larger than {limit} bytes")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def fetch(entry: WheelEntry, folder: Path, opts: FetchOptions) -> Path:
    """Download ``entry`` into ``folder`` under its wheel file name; its sha256 checked."""
    url = entry.source_url(opts.server_url)
    why = allowed_url(url, opts)
    if why is not None:
        raise Refused(why)
    target = folder / entry.filename
    opener = urllib.request.build_opener(_Redirects(opts))
    request = urllib.request.Request(url, headers={"User-Agent": "wheel-refinery"})
    try:
        with opener.open(request, timeout=opts.timeout) as response:
            got = _copy(response, target, opts.max_bytes)
    except urllib.error.HTTPError as exc:
        raise Refused(f"download failed: HTTP {exc.code} from {url}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise Refused(f"download failed: {getattr(exc, 'reason', exc)} ({url})") from None
    if got != entry.sha256:
        target.unlink(missing_ok=True)
        raise Refused(f"sha256 mismatch: the list says {entry.sha256[:16]}…, got {got[:16]}…")
    return target


# --- verdicts -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Verdict:
    entry: WheelEntry
    ok: bool
    detail: str  # "accepted", "already in the store", or why it was refused
    python: str = ""
    tags: tuple[str, ...] = ()
    path: Path | None = None  # the checked download (while the work folder lives)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.entry.to_json(),
            "ok": self.ok,
            "detail": self.detail,
            "python": self.python,
            "tags": list(self.tags),
        }


def _judge(
    entry: WheelEntry, store: Store | None, folder: Path, opts: FetchOptions, twine: bool
) -> Verdict:
    try:
        path = fetch(entry, folder, opts)
        checked: CheckedWheel = check_wheel(
            path, python=entry.python or DEFAULT_PYTHON, twine=twine
        )
        if store is None:
            return Verdict(entry, True, "accepted", checked.python, checked.tags, path)
        refuse_other_bytes(store, checked)
        known = store.get_record(checked.name, checked.version, checked.python)
    except (Refused, RejectedWheel, ConflictError) as exc:
        reason = exc.bare if isinstance(exc, InputError) else str(exc)
        return Verdict(entry, False, reason.removeprefix(f"{folder / entry.filename}: "))
    same = known is not None and known.wheel is not None and known.wheel.sha256 == entry.sha256
    detail = "already in the store" if same else "accepted"
    return Verdict(entry, True, detail, checked.python, checked.tags, path)


def check_entries(
    entries: Sequence[WheelEntry],
    folder: Path,
    opts: FetchOptions,
    *,
    store: Store | None = None,
    twine: bool = True,
) -> list[Verdict]:
    """Download and check every entry into ``folder``; nothing is stored. ``store``: also
    refuse other bytes under a name the store records or serves."""
    return [_judge(e, store, folder, opts, twine) for e in entries]


def ingest_entries(
    entries: Sequence[WheelEntry],
    folder: Path,
    opts: FetchOptions,
    *,
    store: Store,
    twine: bool = True,
) -> tuple[list[Verdict], list[IngestResult]]:
    """Check every entry; store them only when all pass (all or nothing)."""
    verdicts = check_entries(entries, folder, opts, store=store, twine=twine)
    if not all(v.ok for v in verdicts):
        return verdicts, []
    results: list[IngestResult] = []
    for v in verdicts:
        assert v.path is not None
        results += ingest(store, [v.path], python=v.entry.python or DEFAULT_PYTHON, twine=False)
    return verdicts, results


def verdict_doc(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    return {
        "schema": VERDICT_SCHEMA,
        "ok": all(v.ok for v in verdicts),
        "wheels": [v.to_json() for v in verdicts],
    }


def _cell(value: Any) -> str:
    """A table cell from untrusted text: one line, no Markdown or HTML that acts."""
    text = " ".join(str(value).split())[:300]
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|#!~])", r"\\\1", text)


def verdict_markdown(doc: Mapping[str, Any], *, run_url: str = "") -> str:
    """The PR comment for a verdict document (its text escaped: it came from a PR)."""
    if doc.get("schema") != VERDICT_SCHEMA or not isinstance(doc.get("wheels"), list):
        raise InputError(f"not a wheel verdict (schema {VERDICT_SCHEMA})")
    rows = list(doc["wheels"])
    good = sum(1 for w in rows if w.get("ok") is True)
    head = "all accepted" if good == len(rows) else f"{len(rows) - good} refused"
    lines = [COMMENT_MARKER, f"### s390x wheel upload: {head}", ""]
    if not rows:
        lines.append("No wheel entries.")
    else:
        lines += ["| | wheel | list | verdict |", "|---|---|---|---|"]
    for w in rows:
        mark = "✅" if w.get("ok") is True else "❌"
        where = f"{w.get('file', '')}:{w.get('line', '')}"
        lines.append(
            f"| {mark} | {_cell(w.get('filename', ''))} | {_cell(where)} | "
            f"{_cell(w.get('detail', ''))} |"
        )
    lines.append("")
    lines.append("Merging stores the accepted wheels and publishes them to the index.")
    if run_url:
        lines.append(f"\n[Run log]({run_url})")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def work_folder(parent: Path | None = None) -> Iterator[Path]:
    """A temporary folder for downloads, removed afterwards."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="refinery-wheels-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
