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


@pytest.fixture(scope="session")
def recipes() -> Any:
    """Every recipe of the repository's ``packs/``."""
    from refinery.builder.packs import load_recipes

    return load_recipes(Path(__file__).resolve().parents[1] / "packs")


@pytest.fixture(scope="session")
def catalog() -> Any:
    """The repository's hint catalog (``hints/``)."""
    from refinery.hints import load_catalog

    return load_catalog(Path(__file__).resolve().parents[1] / "hints")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def rootfs_root() -> Any:
    """The emulated Debian s390x build root (created and cached on first use)."""
    from refinery.builder.errors import BuildRootUnavailable
    from refinery.builder.rootfs import RootfsRoot
    from refinery.builder.rootfs_image import RootfsSpec
    from refinery.core.cache import CacheRoot

    if os.geteuid() != 0:
        unavailable("the rootfs build root needs root (chroot, unshare --mount)")
    if shutil.which("mmdebstrap") is None:
        unavailable("mmdebstrap is not installed (apt-get install mmdebstrap)")
    root = RootfsRoot(RootfsSpec(), CacheRoot.from_environment(os.environ, Path.home()).roots)
    try:
        root.prepare()
    except BuildRootUnavailable as exc:
        unavailable(f"rootfs build root unavailable: {exc}")
    return root


@pytest.fixture(scope="session")
def cross_root(rootfs_root: Any) -> Any:
    """The cross backend over the emulated root, its toolchain made (and cached) first."""
    from refinery.builder import crosstools
    from refinery.builder.cross import CrossRoot
    from refinery.builder.errors import BuildRootUnavailable
    from refinery.core.cache import CacheRoot

    missing = crosstools.missing_tools("s390x")
    if missing:
        unavailable(f"the cross backend needs {', '.join(missing)} (crossbuild-essential-s390x)")
    root = CrossRoot(rootfs_root, cache=CacheRoot.from_environment(os.environ, Path.home()).cross)
    try:
        root.prepare()
    except BuildRootUnavailable as exc:
        unavailable(f"cross toolchain unavailable: {exc}")
    return root


FOLDERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Folder = marker: a test under tests/unit/ is `unit`, under tests/integration/
    `integration`; nothing else sets them, so a test that marks itself is an error
    (it would sit in the wrong folder)."""
    here = Path(__file__).resolve().parent
    for item in items:
        folder = item.path.resolve().relative_to(here).parts[0]
        mark = FOLDERS.get(folder)
        if mark is None:
            continue
        own = [m.name for m in item.iter_markers() if m.name in FOLDERS]
        if own:
            raise pytest.UsageError(
                f"{item.nodeid}: marked {own[0]!r} by hand; the folder gives the marker "
                f"({folder!r}): move the test or drop the mark"
            )
        item.add_marker(mark)
