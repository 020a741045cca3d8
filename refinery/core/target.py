"""What "installable on the target" means: tags and marker environment for s390x."""

from __future__ import annotations

import functools
import re

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from refinery.core.errors import InputError
from refinery.core.models import Target

_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)$")
_LEGACY = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
_MIN_GLIBC_MINOR = 17  # s390x wheels exist from manylinux2014 (glibc 2.17) on


def parse_python(version: str) -> tuple[int, int]:
    m = re.fullmatch(r"3\.(\d{1,2})", version)
    if not m:
        raise InputError(f"unsupported Python version {version!r} (want 3.N, e.g. 3.11)")
    return 3, int(m.group(1))


def _platform(target: Target) -> tuple[int, int, str]:
    m = _MANYLINUX.fullmatch(target.platform)
    if not m:
        raise InputError(
            f"unsupported target platform {target.platform!r} (want manylinux_2_N_s390x)"
        )
    return int(m.group(1)), int(m.group(2)), m.group(3)


def platform_tags(target: Target) -> list[str]:
    """manylinux tags from the target glibc down to 2.17, newest first."""
    major, minor, arch = _platform(target)
    out = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, _MIN_GLIBC_MINOR - 1, -1)]
    out.append(f"manylinux2014_{arch}")
    return out


@functools.cache
def supported_tags(target: Target) -> dict[Tag, int]:
    """Every tag a wheel may carry to install on ``target``, with its preference rank."""
    py = parse_python(target.python)
    plats = platform_tags(target)
    tags = [
        *cpython_tags(python_version=py, platforms=plats),
        *compatible_tags(python_version=py, interpreter=f"cp{py[0]}{py[1]}", platforms=plats),
    ]
    return {t: rank for rank, t in enumerate(tags)}


def wheel_rank(filename: str, target: Target) -> int | None:
    """Preference rank of a wheel for ``target`` (lower is better); ``None`` if unusable."""
    try:
        _name, _ver, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    supported = supported_tags(target)
    ranks = [supported[t] for t in tags if t in supported]
    return min(ranks) if ranks else None


def is_pure(filename: str) -> bool:
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return False
    return all(t.platform == "any" for t in tags)


@functools.cache
def marker_environment(target: Target) -> dict[str, str]:
    """PEP 508 environment of CPython on Linux s390x — not of the host."""
    major, minor = parse_python(target.python)
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{major}.{minor}.0",
        "os_name": "posix",
        "platform_machine": "s390x",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{major}.{minor}.0",
        "python_version": f"{major}.{minor}",
        "sys_platform": "linux",
    }


def uv_platform(target: Target) -> str:
    """The ``--python-platform`` value uv understands for this target."""
    major, minor, arch = _platform(target)
    return f"{arch}-manylinux_{major}_{minor}"
