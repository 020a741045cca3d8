"""What "installable on the target" means: tags and marker environment for s390x."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from refinery.core.errors import InputError
from refinery.core.models import DEFAULT_PLATFORM, Target

_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)$")
_LEGACY = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
_MIN_GLIBC_MINOR = 17  # s390x wheels exist from manylinux2014 (glibc 2.17) on


def parse_python(version: str) -> tuple[int, int]:
    m = re.fullmatch(r"3\.(\d{1,2})", version)
    if not m:
        raise InputError(f"unsupported Python version {version!r} (want 3.N, e.g. 3.11)")
    return 3, int(m.group(1))


def _platform(platform: str) -> tuple[int, int, str]:
    m = _MANYLINUX.fullmatch(platform)
    if not m:
        raise InputError(f"unsupported target platform {platform!r} (want manylinux_2_N_s390x)")
    return int(m.group(1)), int(m.group(2)), m.group(3)


@functools.cache
def _platform_tags(platform: str) -> tuple[str, ...]:
    major, minor, arch = _platform(platform)
    out = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, _MIN_GLIBC_MINOR - 1, -1)]
    out.append(f"manylinux2014_{arch}")
    return tuple(out)


def platform_tags(target: Target) -> list[str]:
    """manylinux tags from the target glibc down to 2.17, newest first: the one rule of
    what installs on a target platform (as pip's ``packaging`` computes it for s390x)."""
    return list(_platform_tags(target.platform))


def platform_fits(platform: str, target_platform: str) -> bool:
    """Whether a wheel's platform tag (``manylinux_2_35_s390x``, ``manylinux2014_s390x``)
    installs on ``target_platform`` (``manylinux_2_28_s390x``): same rule as
    :func:`wheel_rank`, for the platform part of the tag alone."""
    return platform in _platform_tags(target_platform)


def glibc_floor(platform: str) -> tuple[int, int] | None:
    """The glibc a manylinux platform tag needs (``manylinux2014`` is 2.17); ``None``
    for any other tag (``linux_s390x``, ``musllinux_…``, ``any``)."""
    m = _MANYLINUX.fullmatch(platform)
    if m:
        return int(m.group(1)), int(m.group(2))
    legacy, _sep, _arch = platform.partition("_")
    return _LEGACY.get(legacy) if _sep else None


def platform_arch(platform: str) -> str | None:
    """The architecture of a manylinux platform tag (``s390x``), else ``None``."""
    if glibc_floor(platform) is None:
        return None
    m = _MANYLINUX.fullmatch(platform)
    return m.group(3) if m else platform.partition("_")[2]


def wheel_platforms(filename: str) -> tuple[str, ...]:
    """The platform tags of a wheel file name (empty for a name that is not a wheel's)."""
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return ()
    return tuple(sorted({t.platform for t in tags}))


def wheel_glibc_floor(filename: str, arch: str = "s390x") -> tuple[int, int] | None:
    """The oldest glibc any of the wheel's manylinux tags for ``arch`` installs on;
    ``None`` when it has none (a pure wheel, another architecture)."""
    floors = [
        floor
        for p in wheel_platforms(filename)
        if platform_arch(p) == arch and (floor := glibc_floor(p)) is not None
    ]
    return min(floors) if floors else None


def platform_for(targets: Iterable[Target], python: str) -> str:
    """The platform a node for ``python`` is built for: of the plan's targets with that
    Python, the one with the oldest glibc (a wheel for it installs on all of them)."""
    platforms = [t.platform for t in targets if t.python == python]
    if not platforms:
        return DEFAULT_PLATFORM
    return min(platforms, key=lambda p: _platform(p)[:2])


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
    major, minor, arch = _platform(target.platform)
    return f"{arch}-manylinux_{major}_{minor}"
