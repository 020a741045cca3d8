"""Requirement files as pip users write them, checked strictly.

Accepted: PEP 508 requirements (names, extras, specifiers, markers), comments, blank
lines, ``\\`` continuations, ``-r``/``--requirement`` includes and ``-c``/``--constraint``
files (relative to the including file), and ``--hash`` options on a requirement.
Everything else is an :class:`~refinery.core.errors.InputError` naming ``FILE:LINE``.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from refinery.core.errors import InputError
from refinery.core.models import InputRecord, InputStatus

_INDEX_OPTIONS = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--no-index": "--no-index",
    "--trusted-host": "--trusted-host",
}
_FARM_DECIDES = (
    "{opt} is not allowed: the farm decides where packages come from "
    "(PyPI and our own store); remove the line"
)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^(git|hg|svn|bzr)\+")
_PATHLIKE = re.compile(r"^(\.{1,2}/|/|~|[A-Za-z]:\\)|\.(whl|tar\.gz|zip|tar\.bz2|tgz)$")
_COMMENT = re.compile(r"(^|\s+)#.*$")
MAX_BYTES = 4 << 20  # a requirements file larger than this is not one
MAX_DEPTH = 16  # -r/-c includes nested deeper than this are refused


@dataclass(frozen=True, slots=True)
class Entry:
    """One requirement and where it was written."""

    requirement: Requirement
    path: str
    line: int
    text: str

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def pin(self) -> str | None:
        """The version of an exact ``==`` pin (no wildcard), else ``None``."""
        specs = list(self.requirement.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            return specs[0].version
        return None

    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class RequirementSet:
    files: tuple[str, ...]  # every file read, top-level first
    requirements: tuple[Entry, ...]
    constraints: tuple[Entry, ...]
    digest: str  # sha256 over the files' bytes, in reading order

    def names(self) -> list[str]:
        return sorted({e.name for e in self.requirements})


def _logical_lines(path: Path, text: str) -> list[tuple[int, str]]:
    """Join continuations, strip comments; keep the first physical line number."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if not buf:
            start = number
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        joined = _COMMENT.sub("", "".join(buf)).strip()
        buf = []
        if joined:
            out.append((start, joined))
    if buf:
        joined = _COMMENT.sub("", "".join(buf)).strip()
        if joined:
            out.append((start, joined))
    return out


def _read(path: Path, display: str, via: tuple[str, int] | None) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if via:
            raise InputError(
                f"included file not found: {display}", path=via[0], line=via[1]
            ) from None
        raise InputError("file not found", path=display) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a requirements file", path=display) from None
    except PermissionError:
        raise InputError("permission denied", path=display) from None


def _check_size(path: Path, display: str) -> None:
    """A requirements file is small: refuse a huge one before reading it."""
    size = path.stat().st_size if path.is_file() else 0
    if size > MAX_BYTES:
        raise InputError(
            f"{size} bytes: larger than {MAX_BYTES} for a requirements file", path=display
        )


def _check_bytes(data: bytes, display: str) -> None:
    """A requirements file is text: refuse one holding NUL bytes."""
    nul = data.find(b"\0")
    if nul >= 0 and not data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: told below
        raise InputError(
            "holds a NUL byte: not a text file", path=display, line=data[:nul].count(b"\n") + 1
        )


def _decode(data: bytes, display: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            path=display,
            line=line,
        ) from None
    return text.removeprefix("\ufeff")


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _parse_requirement(text: str, display: str, number: int) -> Requirement:
    head = text.split(";", 1)[0].strip()
    if _URL.match(head) or " @ " in text or re.match(r"^[^;]*@\s*\S+://", text):
        raise InputError(
            f"URL, VCS and direct references are not allowed ({head!r}): name a PyPI "
            "project and version; the farm builds from the sdist on PyPI",
            path=display,
            line=number,
        )
    if _PATHLIKE.search(head):
        raise InputError(
            f"local paths and archive files are not allowed ({head!r}): name a PyPI project",
            path=display,
            line=number,
        )
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        message = str(exc).splitlines()[0]
        kind = "marker" if ";" in text else "requirement"
        raise InputError(f"malformed {kind}: {message}", path=display, line=number) from None
    if req.url:
        raise InputError(
            "direct references (NAME @ URL) are not allowed", path=display, line=number
        )
    if req.marker is not None:
        try:
            Marker(str(req.marker))
        except InvalidMarker as exc:  # pragma: no cover - Requirement already validated
            raise InputError(f"malformed marker: {exc}", path=display, line=number) from None
    return req


_REQ_OPTIONS = re.compile(r"\s--hash[=\s]\S+")


class _Reader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[str] = []
        self.digest = hashlib.sha256()
        self.requirements: list[Entry] = []
        self.constraints: list[Entry] = []
        self.stack: list[Path] = []

    def read(self, path: Path, *, constraint: bool, via: tuple[str, int] | None) -> None:
        path = path.resolve()
        display = _display(path, self.root)
        if path in self.stack:
            chain = " -> ".join(_display(p, self.root) for p in [*self.stack, path])
            assert via is not None
            raise InputError(f"include cycle: {chain}", path=via[0], line=via[1])
        if len(self.stack) >= MAX_DEPTH and via is not None:
            raise InputError(
                f"-r/-c includes nested deeper than {MAX_DEPTH}", path=via[0], line=via[1]
            )
        _check_size(path, display)
        data = _read(path, display, via)
        _check_bytes(data, display)
        text = _decode(data, display)
        self.files.append(display)
        self.digest.update(display.encode() + b"\0" + data + b"\0")
        self.stack.append(path)
        for number, line in _logical_lines(path, text):
            self._line(path, display, number, line, constraint)
        self.stack.pop()

    def _line(self, path: Path, display: str, number: int, line: str, constraint: bool) -> None:
        if line.startswith("-"):
            self._option(path, display, number, line)
            return
        text = _REQ_OPTIONS.sub("", f" {line}").strip()
        if " -" in f" {text}" and re.search(r"(^|\s)--?[A-Za-z]", text):
            opt = re.search(r"(^|\s)(--?[A-Za-z][\w-]*)", text)
            assert opt is not None
            raise InputError(
                f"option {opt.group(2)} is not supported on a requirement line (only --hash)",
                path=display,
                line=number,
            )
        req = _parse_requirement(text, display, number)
        entry = Entry(req, display, number, line)
        (self.constraints if constraint else self.requirements).append(entry)

    def _option(self, path: Path, display: str, number: int, line: str) -> None:
        try:
            parts = shlex.split(line)
        except ValueError as exc:
            raise InputError(f"cannot parse option: {exc}", path=display, line=number) from None
        opt, _, inline = parts[0].partition("=")
        args = [inline] if inline else parts[1:]
        if opt in ("-r", "--requirement", "-c", "--constraint"):
            if len(args) != 1:
                raise InputError(f"{opt} takes exactly one file name", path=display, line=number)
            target = (path.parent / args[0]).resolve()
            if _URL.match(args[0]):
                raise InputError(
                    f"{opt} must name a local file, not a URL", path=display, line=number
                )
            self.read(target, constraint=opt in ("-c", "--constraint"), via=(display, number))
            return
        if opt in _INDEX_OPTIONS:
            raise InputError(
                _FARM_DECIDES.format(opt=_INDEX_OPTIONS[opt]), path=display, line=number
            )
        if opt in ("-e", "--editable"):
            raise InputError(
                "editable installs (-e) are not allowed: name a released PyPI project and version",
                path=display,
                line=number,
            )
        raise InputError(
            f"unsupported option {opt}: requirement files here hold requirements, "
            "-r/-c includes and --hash only",
            path=display,
            line=number,
        )


def _check_conflicts(entries: list[Entry], constraints: list[Entry]) -> None:
    """Two exact pins of one name under the same marker cannot both hold."""
    pins: dict[tuple[str, str], Entry] = {}
    for e in [*entries, *constraints]:
        version = e.pin
        marker = str(e.requirement.marker or "")
        key = (e.name, marker)
        if version is None:
            continue
        seen = pins.get(key)
        if seen is not None and seen.pin != version:
            raise InputError(
                f"conflicting pins for {e.name}: =={version} here, =={seen.pin} at {seen.where()}",
                path=e.path,
                line=e.line,
            )
        pins.setdefault(key, e)
    # A range that excludes another entry's exact pin is a conflict too.
    for e in [*entries, *constraints]:
        marker = str(e.requirement.marker or "")
        pinned = pins.get((e.name, marker))
        if pinned is None or pinned is e or e.pin is not None:
            continue
        spec: SpecifierSet = e.requirement.specifier
        if pinned.pin and not spec.contains(pinned.pin, prereleases=True):
            raise InputError(
                f"conflicting requirements for {e.name}: {spec} here excludes "
                f"=={pinned.pin} at {pinned.where()}",
                path=e.path,
                line=e.line,
            )


def parse_files(paths: list[Path], root: Path | None = None) -> RequirementSet:
    """Read one or more top-level requirement files (and what they include)."""
    if not paths:
        raise InputError("no requirements file given")
    reader = _Reader((root or Path.cwd()).resolve())
    for p in paths:
        reader.read(p, constraint=False, via=None)
    _check_conflicts(reader.requirements, reader.constraints)
    return RequirementSet(
        files=tuple(reader.files),
        requirements=tuple(reader.requirements),
        constraints=tuple(reader.constraints),
        digest=reader.digest.hexdigest(),
    )


# --- input status per file@commit ------------------------------------------------------
def input_id(path: Path | str) -> str:
    """The store id of a requirements file: its path, made safe for a key."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(path)).strip("-")


def source_commit(path: Path) -> str:
    """The commit that last changed ``path``, or ``worktree`` when it has local edits
    (or is not in a git checkout)."""
    import subprocess

    path = path.resolve()
    try:
        last = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--", str(path)],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", str(path)],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "worktree"
    commit = last.stdout.strip()
    return "worktree" if not commit or dirty.stdout.strip() else commit


def input_record(
    path: Path,
    status: InputStatus | str,
    *,
    plan_id: str | None = None,
    reason: str = "",
    commit: str | None = None,
    updated: str = "",
) -> InputRecord:
    return InputRecord(
        input_id=input_id(path),
        path=str(path),
        commit=commit or source_commit(path),
        status=InputStatus(status),
        plan_id=plan_id,
        reason=reason[:500],
        updated=updated,
    )
