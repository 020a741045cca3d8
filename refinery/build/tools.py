"""Host-side helpers that keep pip work out of the emulator.

* The build frontend (pypa/build and its two pure-Python dependencies) is downloaded once
  by the host's pip and unpacked into a directory the root puts on ``sys.path``; nothing
  is pip-installed into the root for it.
* Seed wheels of the common build backends (setuptools, wheel) sit next to it and are
  offered with ``--find-links`` so isolated build environments rarely need the network.

Both live in the cache directory (``$XDG_CACHE_HOME/refinery/tools/<key>``).
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
from dataclasses import dataclass
from pathlib import Path

from refinery.build.errors import BuildRootUnavailable
from refinery.build.rootfs_image import cache_dir as roots_cache_dir

FRONTEND: tuple[str, ...] = ("build>=1.2", "pyproject_hooks>=1.0", "packaging>=24")
SEEDS: tuple[str, ...] = ("setuptools>=70", "wheel>=0.43")
TOOLS_VERSION = 1


@dataclass(frozen=True)
class Tools:
    """``site``: put on ``sys.path`` to run ``build``; ``seed``: a find-links directory."""

    root: Path
    site: Path
    seed: Path


def tools_cache() -> Path:
    return roots_cache_dir().parent / "tools"


def _key() -> str:
    blob = json.dumps({"frontend": FRONTEND, "seeds": SEEDS, "v": TOOLS_VERSION})
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _download(requirements: tuple[str, ...], dest: Path) -> None:
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


def ensure_tools(cache: Path | None = None) -> Tools:
    """The frontend site directory and seed wheels, downloading them the first time."""
    root = (cache or tools_cache()) / _key()
    tools = Tools(root=root, site=root / "site", seed=root / "seed")
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
            _download(FRONTEND, wheels)
            site = staging / "site"
            site.mkdir()
            for wheel in sorted(wheels.glob("*.whl")):
                with zipfile.ZipFile(wheel) as zf:
                    zf.extractall(site)
            _download(SEEDS, staging / "seed")
            (staging / ".complete").write_text("ok\n")
            if root.exists():
                shutil.rmtree(root)
            staging.rename(root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return tools
