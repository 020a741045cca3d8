"""A hostile build (issue 14): the plant fixture's ``setup.py`` tries to write a file into
every shared folder it can name — the pip/uv cache, the unpacked root, the build tools,
earlier waves' wheels, the cross toolchains, zig's shared cache — and lists its
environment. In the rootfs
and cross backends no credential of the host (or of a careless fix's ``env``) reaches
it, nothing lands in a shared folder, and the next build sees nothing planted.

Needs what tests/integration/test_build_rootfs.py and test_build_cross.py need.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from fixtures.buildroot import host_build_options
from fixtures.sdists import make_sdist
from fixtures.wheels import good_wheel

from refinery.builder.cross import CrossRoot
from refinery.builder.options import AttemptSpec
from refinery.builder.proc import is_secret
from refinery.builder.rootfs import RootfsRoot
from refinery.builder.roots import BuildRoot
from refinery.builder.step import build_node
from refinery.builder.zig import zig_at
from refinery.core.models import FileRef, NodeStatus, PlanNode
from refinery.store import sha256_file

OPTIONS = host_build_options()
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "plant"
#: What a CI runner's environment holds; none of it may reach a build.
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIALEAKED",
    "AWS_SECRET_ACCESS_KEY": "leaked-secret",
    "AWS_SESSION_TOKEN": "leaked-session",
    "GITHUB_TOKEN": "ghs_leaked",
    "GH_TOKEN": "ghs_leaked",
    "ACTIONS_RUNTIME_TOKEN": "leaked-runtime",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "leaked-oidc",
    "TWINE_PASSWORD": "leaked-pypi",
    "NPM_TOKEN": "leaked-npm",
}
#: A CI's other variables (no credentials): the host's never reach a build either.
CI = {
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://leaked.invalid/",
    "ACTIONS_CACHE_URL": "https://leaked.invalid/",
    "RUNNER_TEMP": "/leaked",
    "GITHUB_REPOSITORY": "leaked/leaked",
}


def shared_folders(rootfs: RootfsRoot, wheels: Path) -> list[Path]:
    """Every folder a build sees that outlives it."""
    return [
        OPTIONS.cache.pip,
        OPTIONS.cache.tools,
        OPTIONS.cache.cross,
        zig_at(OPTIONS.cache.cross).cache,  # zig's libc/crt/libc++ objects: copy-on-write
        rootfs.lower / "usr",
        rootfs.lower / "usr/lib/python3.11",
        wheels,
        Path(sysconfig.get_paths()["stdlib"]),  # the host's Python (a cross build's)
        Path(sysconfig.get_paths()["purelib"]),
    ]


def planted(folders: list[Path]) -> list[str]:
    """Files named ``planted-*`` in ``folders`` (the unpacked root: at its top only)."""
    found = []
    for folder in folders:
        depth = ["-maxdepth", "1"] if "roots" in folder.parts or "lib" in folder.parts else []
        done = subprocess.run(
            ["find", str(folder), *depth, "-name", "planted-*"],
            capture_output=True,
            text=True,
            check=False,
        )
        found += done.stdout.split()
    return found


def hostile_build(root: BuildRoot, rootfs: RootfsRoot, tmp: Path) -> list[str]:
    """Build the plant fixture once; its ``PLANT`` lines."""
    wheels = tmp.parent / "earlier-waves"
    good_wheel(wheels, "earlier", "1.0")
    source = tmp / "src" / "plant"
    shutil.copytree(FIXTURE, source)
    folders = shared_folders(rootfs, wheels)
    (source / "plant_targets.json").write_text(json.dumps([str(p) for p in folders]))
    sdist = make_sdist(source, tmp / "sdist")
    node = PlanNode(
        "refinery-fixture-plant",
        "0.1.0",
        "3.11",
        NodeStatus.PENDING,
        "",
        True,
        wave=1,
        sdist=FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist)),
    )
    lines: list[str] = []
    spec = AttemptSpec(
        workdir=tmp / "b",
        find_links=wheels,
        env=dict(SECRETS),  # a careless fix that copied the runner's environment
        on_line=lines.append,
    )
    outcome = build_node(node, root, options=OPTIONS, spec=spec)
    assert outcome.status is NodeStatus.BUILT, (outcome.reason, lines[-30:])
    assert planted(folders) == []
    return [line for line in lines if line.startswith("PLANT ")]


def check(first: list[str], second: list[str]) -> None:
    (env,) = {line for line in first if line.startswith("PLANT ENV ")}
    names = env.split()[2:]
    leaked = [n for n in names if is_secret(n) or n in SECRETS or n in CI]
    assert "PATH" in names and not leaked, leaked
    tried = [line for line in first if line.startswith(("PLANT WROTE", "PLANT DENIED"))]
    assert len(tried) >= 8, first  # it really tried every shared folder
    assert any("pip-cache" in line or "/pip" in line for line in tried)
    seen = [line for line in second if line.startswith("PLANT SEEN")]
    assert seen and all(line.endswith(" 0") for line in seen), seen


@pytest.fixture
def leaky_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**SECRETS, **CI}.items():
        monkeypatch.setenv(key, value)


@pytest.mark.usefixtures("leaky_host")
def test_rootfs_build_plants_nothing_and_sees_no_secret(
    rootfs_root: RootfsRoot, tmp_path: Path
) -> None:
    first = hostile_build(rootfs_root, rootfs_root, tmp_path / "one")
    second = hostile_build(rootfs_root, rootfs_root, tmp_path / "two")
    check(first, second)


@pytest.mark.usefixtures("leaky_host")
def test_cross_build_plants_nothing_and_sees_no_secret(
    cross_root: CrossRoot, rootfs_root: RootfsRoot, tmp_path: Path
) -> None:
    first = hostile_build(cross_root, rootfs_root, tmp_path / "one")
    denied = [line for line in first if line.startswith("PLANT DENIED")]
    assert any("Read-only file system" in line for line in denied), first
    zig_cache = f"PLANT WROTE {zig_at(OPTIONS.cache.cross).cache}"
    assert zig_cache in first, first  # written into its copy-on-write layer, gone after
    second = hostile_build(cross_root, rootfs_root, tmp_path / "two")
    check(first, second)
