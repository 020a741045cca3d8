"""Looking at sdists and wheels: fetch + verify, unpack, native sources, ELF, modules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from refinery.builder.errors import SdistError
from refinery.core.models import SourcePatch
from refinery.store import sha256_file
from refinery.upstream.sdist import LEGACY_BUILD_BACKEND, parse_build_system

# ELF e_machine values of the architectures we care about.
E_MACHINE = {"s390x": 22, "x86_64": 62, "aarch64": 183, "ppc64le": 21}
NATIVE_SUFFIXES = frozenset(
    {".c", ".cc", ".cpp", ".cxx", ".c++", ".pyx", ".f", ".f90", ".f95", ".rs", ".go", ".m"}
)
_NON_SHIPPED_DIRS = frozenset(
    {"test", "tests", "testing", "doc", "docs", "example", "examples", "bench", "benchmarks"}
)
_SETUP_NATIVE = re.compile(r"ext_modules|Extension\(|cythonize|CFFI|cffi_modules|rust_extensions")
_NATIVE_BACKENDS = ("mesonpy", "scikit_build_core", "maturin", "setuptools_rust", "pybind11")
_NOT_MODULES = frozenset({"tests", "test", "testing", "docs", "doc", "examples", "benchmarks"})


def fetch_sdist(url: str, sha256: str | None, dest_dir: Path, timeout: float = 300) -> Path:
    """Download (or copy, for ``file://`` and plain paths) an sdist and verify its sha256."""
    parsed = urlparse(url)
    filename = Path(unquote(parsed.path)).name
    if not filename:
        raise SdistError(f"cannot tell the sdist file name from {url!r}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / filename
    try:
        if parsed.scheme in ("", "file"):
            shutil.copyfile(Path(unquote(parsed.path)), dest)
        elif parsed.scheme in ("http", "https"):
            with urllib.request.urlopen(url, timeout=timeout) as response, dest.open("wb") as out:
                shutil.copyfileobj(response, out)
        else:
            raise SdistError(f"unsupported sdist URL scheme in {url!r}")
    except OSError as exc:
        raise SdistError(f"cannot fetch sdist {url}: {exc}") from exc
    if sha256 is not None:
        got = sha256_file(dest)
        if got != sha256.lower():
            dest.unlink(missing_ok=True)
            raise SdistError(f"sha256 mismatch for {filename}: expected {sha256}, got {got}")
    return dest


def _safe_members(tar: tarfile.TarFile) -> Iterable[tarfile.TarInfo]:
    for member in tar.getmembers():
        if member.name.startswith("/") or ".." in Path(member.name).parts:
            raise SdistError(f"sdist member escapes the archive: {member.name}")
        yield member


def unpack_sdist(sdist: Path, dest: Path) -> Path:
    """Unpack an sdist into ``dest``; return the project directory (holding pyproject/setup)."""
    dest.mkdir(parents=True, exist_ok=True)
    name = sdist.name
    if name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            for info in zf.infolist():
                if info.filename.startswith("/") or ".." in Path(info.filename).parts:
                    raise SdistError(f"sdist member escapes the archive: {info.filename}")
            zf.extractall(dest)
    else:
        try:
            with tarfile.open(sdist) as tar:
                members = list(_safe_members(tar))
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(dest, members=members, filter="data")
                else:  # Python < 3.11.4 (Debian bookworm's 3.11.2): members checked above
                    tar.extractall(dest, members=members)
        except tarfile.TarError as exc:
            raise SdistError(f"cannot unpack {name}: {exc}") from exc
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


_LEGACY_BACKEND = LEGACY_BUILD_BACKEND
#: the array up to its own closing bracket: strings may hold one (``"pkg[extra]"``)
_REQUIRES = re.compile(
    r"""(?ms)^(requires\s*=\s*)\[(?:"(?:[^"\\]|\\.)*"|'[^']*'|\#[^\n]*|[^\]"'\#])*\]"""
)
_TABLE = re.compile(r"(?m)^\[build-system\]\s*$")


def add_build_requires(project: Path, extra: Sequence[str]) -> tuple[str, ...]:
    """Add ``extra`` to the sdist's ``[build-system].requires`` (a hint's fix: pypa/build
    installs them in its isolated environment). Returns the resulting list.

    Only the ``requires`` array is rewritten (the rest of the file is left as it was);
    the result is parsed again and must say what was meant."""
    path = project / "pyproject.toml"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        system = parse_build_system(text)
    except tomllib.TOMLDecodeError as exc:
        raise SdistError(f"pyproject.toml does not parse: {exc}") from None
    wanted = tuple(dict.fromkeys([*system.requires, *extra]))
    array = "[" + ", ".join(json.dumps(r) for r in wanted) + "]"
    if not system.declared:
        text += f'\n[build-system]\nrequires = {array}\nbuild-backend = "{_LEGACY_BACKEND}"\n'
    else:
        table = _TABLE.search(text)
        if table is None:
            raise SdistError("pyproject.toml: cannot find the [build-system] table to edit")
        head, body = text[: table.end()], text[table.end() :]
        nxt = re.search(r"(?m)^\[", body)
        section, rest = (body[: nxt.start()], body[nxt.start() :]) if nxt else (body, "")
        if _REQUIRES.search(section):
            section = _REQUIRES.sub(lambda m: m.group(1) + array, section, count=1)
        else:
            section = f"\nrequires = {array}" + section
        if "build-backend" not in section:
            section = f'\nbuild-backend = "{_LEGACY_BACKEND}"' + section
        text = head + section + rest
    got = tomllib.loads(text).get("build-system", {}).get("requires")
    if tuple(got or ()) != wanted:
        raise SdistError(f"pyproject.toml: could not add build requirements {list(extra)}")
    path.write_text(text, encoding="utf-8")
    return wanted


def apply_patches(project: Path, patches: Sequence[SourcePatch]) -> tuple[str, ...]:
    """Apply a fix's patches to the unpacked sdist in order (GNU ``patch -p1``, no
    fuzz; each is tried with ``--dry-run`` first, so one written for another release
    changes nothing). Returns a line per patch; a patch that does not apply raises
    :class:`SdistError` with patch's own words."""
    argv = ["patch", "-p1", "--batch", "--forward", "--fuzz=0", "--no-backup-if-mismatch"]
    done: list[str] = []
    for source_patch in patches:
        for extra in (["--dry-run"], []):
            result = subprocess.run(
                [*argv, *extra],
                cwd=project,
                input=source_patch.text,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                said = " ".join((result.stdout + result.stderr).split())
                raise SdistError(f"patch {source_patch.summary()} does not apply: {said[:400]}")
        files = result.stdout.count("patching file ")
        done.append(f"{source_patch.summary()}: {files} files patched")
    return tuple(done)


@dataclass(frozen=True)
class NativeSources:
    """Evidence that a source tree builds compiled code."""

    files: tuple[str, ...]
    setup_mentions: bool
    backend: str

    @property
    def expected(self) -> bool:
        return bool(self.files) or self.setup_mentions or self.backend in _NATIVE_BACKENDS


def _backend_of(project: Path) -> str:
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file():
        return ""
    import tomllib

    try:
        system = parse_build_system(pyproject.read_text(errors="replace"))
    except tomllib.TOMLDecodeError:
        return ""
    backend = system.backend
    requires = " ".join(system.requires)
    for native in _NATIVE_BACKENDS:
        if native in backend or native.replace("_", "-") in requires:
            return native
    return backend


def native_sources(project: Path) -> NativeSources:
    """Compiled-language sources shipped outside test/doc folders, and setup.py hints."""
    files: list[str] = []
    for path in sorted(project.rglob("*")):
        if path.suffix.lower() not in NATIVE_SUFFIXES or not path.is_file():
            continue
        rel = path.relative_to(project)
        if any(part.lower() in _NON_SHIPPED_DIRS for part in rel.parts[:-1]):
            continue
        files.append(rel.as_posix())
    setup_py = project / "setup.py"
    mentions = False
    if setup_py.is_file():
        mentions = bool(_SETUP_NATIVE.search(setup_py.read_text(errors="replace")))
    return NativeSources(tuple(files), mentions, _backend_of(project))


def elf_machine(header: bytes) -> int | None:
    """``e_machine`` of an ELF header, or ``None`` when ``header`` is not ELF."""
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    if header[5] == 2:
        return int.from_bytes(header[18:20], "big")
    return int.from_bytes(header[18:20], "little")


def elf_members(wheel: Path) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of every ELF file in ``wheel``."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            with zf.open(info) as fh:
                if fh.read(4) != b"\x7fELF":
                    continue
            yield info.filename, zf.read(info)


@dataclass(frozen=True)
class WheelInfo:
    filename: str
    elf: tuple[tuple[str, int], ...]  # (member, e_machine)
    top_level: tuple[str, ...]
    requires_dist: tuple[str, ...]

    @property
    def is_pure(self) -> bool:
        return not self.elf

    def foreign_elf(self, arch: str) -> tuple[str, ...]:
        want = E_MACHINE.get(arch)
        return tuple(name for name, machine in self.elf if machine != want)


def _module_of(path: str) -> str | None:
    first = path.split("/", 1)[0]
    if first.endswith((".dist-info", ".data")) or first in ("__pycache__", ""):
        return None
    if "/" not in path:
        # A top-level file: module.py or module.cpython-311-s390x-linux-gnu.so
        if not first.endswith((".py", ".so", ".pyd")) or first.endswith(".pth"):
            return None
        first = first.split(".", 1)[0]
    return first if first.isidentifier() else None


def inspect_wheel(wheel: Path) -> WheelInfo:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        elf: list[tuple[str, int]] = []
        for info in zf.infolist():
            if info.is_dir() or info.file_size < 20:
                continue
            with zf.open(info) as fh:
                machine = elf_machine(fh.read(20))
            if machine is not None:
                elf.append((info.filename, machine))
        top: list[str] = []
        requires: list[str] = []
        for name in names:
            parts = name.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info"):
                if parts[1] == "top_level.txt":
                    text = zf.read(name).decode(errors="replace")
                    top = [line.strip() for line in text.splitlines() if line.strip()]
                elif parts[1] == "METADATA":
                    meta = zf.read(name).decode(errors="replace")
                    requires = [
                        line.partition(":")[2].strip()
                        for line in meta.splitlines()
                        if line.startswith("Requires-Dist:")
                    ]
        if not top:
            seen: dict[str, None] = {}
            for name in names:
                module = _module_of(name)
                if module:
                    seen.setdefault(module, None)
            top = list(seen)
    modules = tuple(m.replace("/", ".") for m in top if m.split("/")[0] not in _NOT_MODULES)
    return WheelInfo(wheel.name, tuple(elf), modules, tuple(requires))
