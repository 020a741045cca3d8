from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.need import unavailable
from fixtures.pyindex import Dist, IndexServer, write_index

S390X = "cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x"
X86 = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"

FIXTURE_DISTS = [
    Dist("setuptools", "70.0", wheels=["py3-none-any"], build_requires=[]),
    Dist("purepkg", "1.0", wheels=["py3-none-any"]),
    Dist("purepkg", "1.1", wheels=["py3-none-any"]),
    Dist("s390xpkg", "2.0", wheels=[S390X, X86]),
    Dist("abi3pkg", "1.0", wheels=["cp39-abi3-manylinux_2_28_s390x", X86]),
    Dist("toonew-glibc", "1.0", wheels=["cp311-cp311-manylinux_2_34_s390x"], build_requires=[]),
    Dist("cybuild", "1.0", build_requires=["setuptools>=61"]),
    Dist("cybuild", "2.0", build_requires=["setuptools>=61"]),
    Dist("x86only", "1.0", wheels=[X86], build_requires=["setuptools>=61", "cybuild>=1"]),
    Dist("legacy", "0.5"),  # sdist without pyproject.toml
    Dist(
        "withdeps",
        "1.0",
        wheels=["py3-none-any"],
        requires=[
            "purepkg>=1.0",
            "s390xpkg",
            'hostonly; platform_machine == "x86_64"',
            'x86only; extra == "fast"',
        ],
    ),
    Dist("hostonly", "1.0", wheels=["py3-none-any"]),
    Dist("nosdist", "1.0", wheels=[X86], sdist=False),
    Dist("newpy", "1.0", wheels=["py3-none-any"], requires_python=">=3.13", build_requires=[]),
    Dist("cyc-a", "1.0", build_requires=["cyc-b"]),
    Dist("cyc-b", "1.0", build_requires=["cyc-a"]),
    Dist("needs-cyc", "1.0", requires=["cyc-a"]),
    Dist("oldpin", "1.0", wheels=["py3-none-any"], requires=["purepkg<1.0"]),
]


@pytest.fixture(scope="session")
def fixture_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("index")
    write_index(root, FIXTURE_DISTS)
    with IndexServer(root) as server:
        yield server.url


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def rootfs_root() -> Any:
    """The emulated Debian s390x build root (created and cached on first use)."""
    from refinery.builder.errors import BuildRootUnavailable
    from refinery.builder.rootfs import RootfsRoot

    if os.geteuid() != 0:
        unavailable("the rootfs build root needs root (chroot, unshare --mount)")
    if shutil.which("mmdebstrap") is None:
        unavailable("mmdebstrap is not installed (apt-get install mmdebstrap)")
    root = RootfsRoot()
    try:
        root.prepare()
    except BuildRootUnavailable as exc:
        unavailable(f"rootfs build root unavailable: {exc}")
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/unit/ are `unit` unless marked `integration` (a module whose
    tests are mostly unit can hold a few that run real jobs)."""
    for item in items:
        path = item.nodeid.replace("\\", "/")
        in_unit = "tests/unit/" in path or path.startswith("unit/")
        if in_unit and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)
