"""``refinery ingest WHEEL…``: add existing wheels to the store after validation.

A wheel is accepted only when all of these hold; otherwise it is rejected with a
one-line reason and nothing is stored:

* it is a readable zip whose entries are relative paths without ``..``;
* its file name is a valid wheel name whose name and version match ``METADATA``;
* every file listed in ``RECORD`` is present with the recorded sha256 and size, and every
  file in the zip is listed (``RECORD`` itself, and signatures, may go unhashed);
* every tag is pure (``any``) or a portable s390x one (``manylinux*``/``musllinux*``);
* ``twine check`` passes.

An accepted wheel gets a build record with status ``built`` and source ``ingested``
(not built here: no attempt, no build root). A wheel keeps the SBOMs it carries in
``.dist-info/sboms/`` (PEP 770) untouched; the ``ingested`` event names them (or says
there are none), so nobody mistakes them for SBOMs this farm wrote.
"""

from __future__ import annotations

import base64
import hashlib
import re
import stat
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from refinery.core.clock import now
from refinery.core.errors import ConflictError, InputError
from refinery.core.models import DEFAULT_PYTHON, BuildRecord, NodeStatus, WheelRef, normalize_name
from refinery.store.files import sha256_file, wheel_metadata
from refinery.store.ledger import Store

INGEST_SCHEMA = 1
MAX_UNPACKED = 4 << 30  # bytes a wheel may unpack to
BOMB_MEMBER = 8 << 20  # a member this large …
BOMB_RATIO = 200  # … compressed more than this many times is a zip bomb
_PORTABLE = re.compile(r"^(manylinux\d*_\w+|manylinux_\d+_\d+_\w+|musllinux_\d+_\d+_\w+)$")


class RejectedWheel(InputError):
    """A wheel failed validation; the message is the one-line reason."""


@dataclass(frozen=True, slots=True)
class CheckedWheel:
    path: Path
    name: str  # normalised
    version: str
    python: str
    tags: tuple[str, ...]
    pure: bool


@dataclass(frozen=True, slots=True)
class IngestResult:
    name: str
    version: str
    python: str
    wheel: WheelRef
    stored: bool  # False: the same wheel was already recorded
    schema: int = INGEST_SCHEMA

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {"schema": out.pop("schema"), **out, "wheel": self.wheel.to_json()}


def _reject(path: Path, reason: str) -> RejectedWheel:
    return RejectedWheel(reason, path=str(path))


def _python_of(tags: frozenset[Tag], pure: bool, default: str) -> str:
    """The record's Python: ``cpXY`` → ``X.Y``; pure, abi3 or ``py3`` wheels → ``default``."""
    found = set()
    for t in tags:
        m = re.fullmatch(r"cp(\d)(\d+)", t.interpreter)
        if m and t.abi != "abi3" and not pure:
            found.add(f"{m.group(1)}.{m.group(2)}")
    if len(found) > 1:
        raise ValueError(f"tags name several CPython versions {sorted(found)}")
    return found.pop() if found else default


def _check_record(path: Path, zf: zipfile.ZipFile, dist_info: str) -> None:
    try:
        record = zf.read(f"{dist_info}/RECORD").decode()
    except KeyError:
        raise _reject(path, f"{dist_info}/RECORD is missing") from None
    listed: set[str] = set()
    import csv
    import io

    for row in csv.reader(io.StringIO(record)):
        if not row:
            continue
        if len(row) != 3:
            raise _reject(path, f"RECORD: malformed line {','.join(row)!r}")
        name, digest, size = row
        listed.add(name)
        if name == f"{dist_info}/RECORD" or (
            not digest and name.startswith(f"{dist_info}/RECORD.")
        ):
            continue
        if not digest:
            raise _reject(path, f"RECORD: {name} has no hash")
        algo, _, expected = digest.partition("=")
        if algo not in ("sha256", "sha384", "sha512"):
            raise _reject(path, f"RECORD: {name} uses hash {algo!r} (want sha256)")
        try:
            data = zf.read(name)
        except KeyError:
            raise _reject(path, f"RECORD lists {name}, which is not in the wheel") from None
        actual = base64.urlsafe_b64encode(hashlib.new(algo, data).digest()).rstrip(b"=").decode()
        if actual != expected.rstrip("="):
            raise _reject(path, f"RECORD: hash mismatch for {name}")
        if size and int(size) != len(data):
            raise _reject(path, f"RECORD: size mismatch for {name}")
    for info in zf.infolist():
        if not info.is_dir() and info.filename not in listed:
            raise _reject(path, f"{info.filename} is not listed in RECORD")


def _check_sizes(path: Path, zf: zipfile.ZipFile) -> None:
    """Before anything is unpacked: no symlinks, no zip bomb (too large unpacked, or a
    large member compressed beyond any real file's ratio)."""
    total = 0
    for info in zf.infolist():
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _reject(path, f"symlink in zip: {info.filename!r}")
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > BOMB_MEMBER and ratio > BOMB_RATIO:
            raise _reject(path, f"zip bomb: {info.filename!r} unpacks {ratio:.0f} times its size")
    if total > MAX_UNPACKED:
        raise _reject(path, f"zip bomb: unpacks to {total} bytes (more than {MAX_UNPACKED})")


def _check_zip(path: Path, zf: zipfile.ZipFile) -> str:
    """Readable members with safe paths and one ``.dist-info``; returns its name."""
    _check_sizes(path, zf)
    try:
        bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _reject(path, f"corrupt zip: {exc}") from None
    if bad is not None:
        raise _reject(path, f"corrupt zip member {bad}")
    for info in zf.infolist():
        n = info.filename
        if n.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", n) or ".." in re.split(r"[/\\]", n):
            raise _reject(path, f"unsafe path in zip: {n!r}")
    tops = {i.filename.split("/")[0] for i in zf.infolist()}
    dist_infos = {top for top in tops if top.endswith(".dist-info")}
    if len(dist_infos) != 1:
        raise _reject(path, f"want exactly one .dist-info folder, found {len(dist_infos)}")
    return dist_infos.pop()


def _check_metadata(
    path: Path, zf: zipfile.ZipFile, dist_info: str, name: str, version: Version
) -> str:
    """``METADATA`` names the file name's project and version; returns that version."""
    try:
        metadata = zf.read(f"{dist_info}/METADATA")
    except KeyError:
        raise _reject(path, f"{dist_info}/METADATA is missing") from None
    headers = BytesHeaderParser().parsebytes(metadata)
    mname, mversion = headers.get("Name"), headers.get("Version")
    if not mname or not mversion:
        raise _reject(path, "METADATA lacks Name or Version")
    if canonicalize_name(str(mname)) != name:
        raise _reject(path, f"file name says {name}, METADATA says Name: {mname}")
    try:
        same = Version(str(mversion)) == version
    except InvalidVersion:
        same = False
    if not same:
        raise _reject(path, f"file name says {version}, METADATA says Version: {mversion}")
    return str(mversion)


def _check_tags(path: Path, tags: frozenset[Tag]) -> None:
    """Every tag pure or a portable s390x one."""
    for t in sorted(tags, key=str):
        if t.platform == "any":
            continue
        if not t.platform.endswith("s390x"):
            raise _reject(path, f"tag {t} is not for s390x (or pure)")
        if not _PORTABLE.match(t.platform):
            raise _reject(path, f"tag {t} is not portable (run auditwheel repair)")


def check_wheel(path: Path, *, python: str = DEFAULT_PYTHON, twine: bool = True) -> CheckedWheel:
    """Validate ``path``; raise :class:`RejectedWheel` with a one-line reason."""
    if not path.is_file():
        raise _reject(path, "no such file")
    try:
        wname, wversion, _build, tags = parse_wheel_filename(path.name)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise _reject(path, f"not a wheel file name: {exc}") from None
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _reject(path, f"not a readable zip: {exc}") from None
    with zf:
        dist_info = _check_zip(path, zf)
        version = _check_metadata(path, zf, dist_info, wname, wversion)
        _check_record(path, zf, dist_info)
    _check_tags(path, tags)
    pure = all(t.platform == "any" for t in tags)
    try:
        py = _python_of(tags, pure, python)
    except ValueError as exc:
        raise _reject(path, str(exc)) from None
    if twine:
        _twine_check(path)
    return CheckedWheel(
        path, normalize_name(wname), version, py, tuple(sorted(str(t) for t in tags)), pure
    )


def _twine_check(path: Path) -> None:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "twine", "check", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _reject(path, f"twine check could not run: {exc}") from None
    if proc.returncode != 0:
        lines = [
            ln.strip()
            for ln in (proc.stdout + proc.stderr).splitlines()
            if ln.strip() and not ln.startswith("Checking")
        ]
        reason = lines[0] if lines else f"exit {proc.returncode}"
        raise _reject(path, f"twine check failed: {reason[:200]}")


def refuse_other_bytes(store: Store, c: CheckedWheel) -> None:
    """A wheel of the same name with other bytes is neither recorded nor served yet."""
    digest = sha256_file(c.path)
    existing = store.get_record(c.name, c.version, c.python)
    if (
        existing is not None
        and existing.wheel is not None
        and existing.wheel.filename == c.path.name
        and existing.wheel.sha256 != digest
    ):
        raise ConflictError(
            f"{c.path}: {c.path.name} is already recorded with different bytes "
            f"(sha256 {existing.wheel.sha256[:12]}…)"
        )
    summary = store.get_summary(c.name)
    for entry in summary.files.values() if summary else ():
        if entry.filename == c.path.name and entry.sha256 != digest:
            raise ConflictError(
                f"{c.path}: the index already serves {entry.filename} with different "
                f"bytes (sha256 {entry.sha256[:12]}…)"
            )


def carried_sboms(path: Path) -> list[str]:
    """The wheel's own SBOM files (``<name>.dist-info/sboms/*``), as it came."""
    with zipfile.ZipFile(path) as zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
    return sorted(n for n in names if n.count("/") == 2 and n.split("/")[1] == "sboms")


def _provenance_note(path: Path) -> str:
    sboms = carried_sboms(path)
    if not sboms:
        return "not built here; carries no SBOM"
    return "not built here; keeps its own SBOM " + ", ".join(n.split("/", 1)[1] for n in sboms)


def _record(store: Store, c: CheckedWheel) -> IngestResult:
    existing = store.get_record(c.name, c.version, c.python)
    ref = store.put_wheel(c.path)
    note = _provenance_note(c.path)
    if existing is not None and existing.wheel == ref and existing.status is NodeStatus.BUILT:
        return IngestResult(c.name, c.version, c.python, ref, stored=False)

    def change(cur: BuildRecord | None) -> BuildRecord:
        base = cur or BuildRecord(c.name, c.version, c.python, NodeStatus.BUILT)
        return base.evolve(
            status=NodeStatus.BUILT,
            source="ingested",
            wheel=ref,
            reason="ingested",
            lease_expires=None,
        ).with_event(now(), "ingested", f"{ref.filename} sha256={ref.sha256}; {note}")

    store.update_record(c.name, c.version, c.python, change)
    return IngestResult(c.name, c.version, c.python, ref, stored=True)


def ingest(
    store: Store, paths: Sequence[Path], *, python: str = DEFAULT_PYTHON, twine: bool = True
) -> list[IngestResult]:
    """Validate every wheel first (all or nothing), then store and record them."""
    checked = [check_wheel(p, python=python, twine=twine) for p in paths]
    for c in checked:
        wheel_metadata(c.path)  # readable; raises InputError otherwise
    for c in checked:
        refuse_other_bytes(store, c)
    return [_record(store, c) for c in checked]
