"""numpy as a build requirement of a cross build: the build machine's numpy, the
target's build files.

A package that compiles against numpy's C API needs two numpys in a cross build. The
build tools run on the build machine: the cross-python (an x86_64 interpreter with the
target's sysconfig) imports numpy for ``numpy.get_include()``, Cython's
``cimport numpy``, a ``setup.py`` or ``numpy-config``, so numpy's Python modules and
extensions must be the build machine's. What the compiler and the linker read must be
the target's: the headers (``_numpyconfig.h`` is generated per platform: type sizes,
``long double`` format, the API version the wheel was built with), the static
``libnpymath.a`` and ``numpy.pc``. So the build machine's numpy of the same version is
installed (build-pip, as every build requirement) and its ``_core/include`` and
``_core/lib`` (``core/`` before numpy 2) are replaced by those of the target's numpy
wheel: the plan's own built wheel (an earlier wave's, on the find-links) or the
index's. meson finds it through ``numpy-config`` named in a per-build cross file
(meson asks only the cross file for a host machine's config tool, and its pkg-config
is the sysroot's).

Without a target wheel of a numpy the requirements allow, the requirements step fails
with pip's "Could not find a version" for the target platform: building against the
build machine's numpy headers would be a silent guess.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from refinery.core.glibc import Glibc
from refinery.core.models import Target
from refinery.core.target import platform_tags

NUMPY = "numpy"
#: The parts of a numpy wheel that describe the platform it was built for.
TARGET_PARTS = (
    "numpy/_core/include/",
    "numpy/_core/lib/",
    "numpy/core/include/",
    "numpy/core/lib/",
)
_WHEEL_VERSION = re.compile(r"^numpy-([^-]+)-")
_DIST_INFO = re.compile(r"^numpy-([^-]+)\.dist-info$")


def numpy_requirements(wanted: Sequence[str], python: str) -> tuple[str, ...]:
    """The requirements of ``wanted`` that name numpy itself and apply to CPython
    ``python`` (pypa/build lists them with their markers: pywavelets asks
    ``numpy>=2.3.2; python_version>='3.14'`` too), markers dropped."""
    out = []
    env = {"python_version": python, "python_full_version": f"{python}.0"}
    for text in wanted:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) != NUMPY:
            continue
        if req.marker is None or req.marker.evaluate(env):
            out.append(f"{NUMPY}{req.specifier}")
    return tuple(out)


def _names_numpy(text: str) -> bool:
    try:
        return canonicalize_name(Requirement(text).name) == NUMPY
    except InvalidRequirement:
        return False


def pinned(wanted: Sequence[str], version: str) -> tuple[str, ...]:
    """``wanted`` with every numpy requirement replaced by ``numpy==version`` (the build
    machine's numpy is the target wheel's version)."""
    keep = [r for r in wanted if not _names_numpy(r)]
    return (*keep, f"{NUMPY}=={version}") if len(keep) < len(wanted) else tuple(wanted)


def target_platforms(arch: str, glibc: Glibc, python: str) -> list[str]:
    """pip's ``--platform`` values for a manylinux target: every tag that installs on it
    (pip widens only the legacy ``manylinux2014``, not ``manylinux_2_28``)."""
    return platform_tags(Target(python, f"manylinux_{glibc[0]}_{glibc[1]}_{arch}"))


def download_argv(
    build_python: Path,
    dest: Path,
    requirements: Sequence[str],
    *,
    platforms: Sequence[str],
    python: str,
) -> list[str]:
    """build-pip downloading the target's numpy wheel (binary only, no dependencies)."""
    argv = [str(build_python), "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    for platform in platforms:
        argv += ["--platform", platform]
    argv += ["--implementation", "cp", "--python-version", python]
    argv += ["--abi", "cp" + python.replace(".", ""), "--dest", str(dest)]
    return [*argv, *requirements]


def wheel_in(dest: Path) -> Path | None:
    """The numpy wheel pip downloaded into ``dest``."""
    found = sorted(dest.glob("numpy-*.whl"))
    return found[-1] if found else None


def wheel_version(wheel: Path) -> str:
    m = _WHEEL_VERSION.match(wheel.name)
    if m is None:
        raise ValueError(f"not a numpy wheel: {wheel.name}")
    return m.group(1)


def installed_version(folder: Path) -> str | None:
    """The version of the numpy ``pip --target`` installed into ``folder``, if any."""
    if not (folder / NUMPY / "__init__.py").is_file():
        return None
    for entry in folder.iterdir():
        m = _DIST_INFO.match(entry.name)
        if m:
            return m.group(1)
    return None


def retarget(folder: Path, wheel: Path) -> tuple[str, ...]:
    """Replace the build files of the numpy in ``folder`` (the build machine's) by the
    target ``wheel``'s; the files written, relative to ``folder``. The versions must be
    the same (the Python side stays the build machine's)."""
    have, want = installed_version(folder), wheel_version(wheel)
    if have != want:
        raise ValueError(f"numpy {have} for the build machine, {want} for the target")
    for part in TARGET_PARTS:
        old = folder / part
        if old.is_dir():
            shutil.rmtree(old)
    written: list[str] = []
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or not name.startswith(TARGET_PARTS) or ".." in name.split("/"):
                continue
            dest = folder / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(info))
            written.append(name)
    if not any(n.endswith("/_numpyconfig.h") for n in written):
        raise ValueError(f"{wheel.name} has no numpy/_core/include/numpy/_numpyconfig.h")
    return tuple(written)


def meson_cross_file(numpy_config: Path) -> str:
    """A second meson cross file naming the build machine's ``numpy-config`` (which
    answers with the retargeted include folder) for the host machine."""
    return f"[binaries]\nnumpy-config = '{numpy_config}'\n"
