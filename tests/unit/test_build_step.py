"""The build step and the runner against a fake build root (no emulation, no network)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from refinery.builder import artifacts, proc
from refinery.builder.errors import MissingPython, SdistError, SystemRecipeFailed
from refinery.builder.proc import OnLine, ProcResult
from refinery.builder.roots import Mounts
from refinery.builder.runner import BuildEvent, Fix, build_plan
from refinery.builder.step import PHASE_PREFIX, BuildOutcome, build_node, uv_env, why_lines
from refinery.builder.tools import Tools
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.store.ledger import Store

pytestmark = pytest.mark.unit

S390X_ELF = b"\x7fELF\x02\x02\x01" + b"\0" * 11 + (22).to_bytes(2, "big") + b"\0" * 40
X86_ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 11 + (62).to_bytes(2, "little") + b"\0" * 40


def make_wheel(
    path: Path, name: str, version: str, files: Mapping[str, bytes], tag: str = "py3-none-any"
) -> Path:
    dist_info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test\n\n"
    wheel = f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
    target = path / f"{name}-{version}-{tag}.whl"
    path.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
        zf.writestr(f"{dist_info}/METADATA", meta)
        zf.writestr(f"{dist_info}/WHEEL", wheel)
        zf.writestr(f"{dist_info}/RECORD", "")
    return target


def make_sdist(path: Path, name: str, version: str, files: Mapping[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    target = path / f"{name}-{version}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-{version}/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return target


def node_for(sdist: Path, name: str = "demo", python: str = "3.11", wave: int = 0) -> PlanNode:
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    return PlanNode(
        name,
        "1.0",
        python,
        NodeStatus.PENDING,
        "",
        True,
        wave=wave,
        sdist=FileRef(sdist.name, sdist.as_uri(), digest),
    )


class FakeSession:
    backend = "fake"
    package_manager = "apt"
    host_auditwheel = True
    ldpaths: tuple[Path, ...] = ()
    ca_bundle = None

    def __init__(self, root: FakeRoot, mounts: Mounts, purpose: str) -> None:
        self.root = root
        self.mounts = mounts
        self.purpose = purpose

    def inside(self, host: Path) -> str:
        return str(host)

    def python(self, version: str) -> str:
        if version not in self.root.pythons():
            raise MissingPython(version, self.root.pythons(), "fake")
        return f"/usr/bin/python{version}"

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_line: OnLine | None = None,
        log: Path | None = None,
        cwd: str | None = None,
    ) -> ProcResult:
        self.root.calls.append((self.purpose, tuple(argv), dict(env or {})))
        emit = on_line or (lambda _line: None)
        lines: list[str] = []
        if "--wheel" in argv:
            outdir = Path(argv[argv.index("--outdir") + 1])
            if self.mounts.wheels is not None:
                self.root.seen_links.append(sorted(p.name for p in self.mounts.wheels.iterdir()))
            lines = self.root.build_lines
            if self.root.build_exit == 0:
                project = Path(argv[-1]).name.rsplit("-", 1)
                make_wheel(outdir, project[0], project[1], self.root.wheel_files)
        elif argv[:2] == ["sh", "-c"] and "smoke" in argv:
            lines = [f"SMOKE OK {m} /x" for m in argv[argv.index("smoke") + 1 :]]
        for line in lines:
            emit(line)
        if log is not None:
            with log.open("a") as fh:
                fh.write("\n".join(lines) + "\n")
        code = self.root.build_exit if "--wheel" in argv else 0
        return ProcResult(tuple(argv), code, 0.01, False, tuple(lines))

    def install_system(
        self,
        packages: Sequence[str],
        *,
        timeout: float | None = None,
        on_line: OnLine | None = None,
        log: Path | None = None,
    ) -> ProcResult:
        self.root.installed.append(tuple(packages))
        if self.root.recipe_fails:
            raise SystemRecipeFailed("apt", tuple(packages), 100)
        return ProcResult(("apt-get",), 0, 0.0, False, ())


class FakeRoot:
    backend = "fake"
    arch = "s390x"
    image = "fake@sha256:0"

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...], dict[str, str]]] = []
        self.installed: list[tuple[str, ...]] = []
        self.seen_links: list[list[str]] = []
        self.wheel_files: dict[str, bytes] = {"demo/__init__.py": b"x = 1\n"}
        self.build_lines = ["building", "Successfully built"]
        self.build_exit = 0
        self.recipe_fails = False
        self.prepared = False

    def prepare(self, on_line: OnLine | None = None) -> None:
        self.prepared = True

    def pythons(self) -> tuple[str, ...]:
        return ("3.11",)

    @contextlib.contextmanager
    def _session(self, mounts: Mounts, purpose: str) -> Iterator[FakeSession]:
        yield FakeSession(self, mounts, purpose)

    def build_session(self, mounts: Mounts) -> contextlib.AbstractContextManager[FakeSession]:
        return self._session(mounts, "build")

    def smoke_session(self, mounts: Mounts) -> contextlib.AbstractContextManager[FakeSession]:
        return self._session(mounts, "smoke")


@pytest.fixture(autouse=True)
def no_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never download uv; the uv path is tested with a fake home."""
    monkeypatch.setattr("refinery.builder.step.ensure_uv", lambda tools, arch: None)


@pytest.fixture
def tools(tmp_path: Path) -> Tools:
    root = tmp_path / "tools"
    (root / "site").mkdir(parents=True)
    (root / "seed").mkdir()
    return Tools(root=root, site=root / "site", seed=root / "seed")


PURE_SDIST = {"pyproject.toml": "[build-system]\n", "demo/__init__.py": "x = 1\n"}
NATIVE_SDIST = {
    "pyproject.toml": "[build-system]\n",
    "setup.py": "from setuptools import Extension\next_modules=[Extension('demo._s', [])]\n",
    "src/demo/_speedups.c": "int x;\n",
    "tests/helper.c": "int y;\n",
}


def run_step(
    tmp_path: Path, root: FakeRoot, tools: Tools, sdist_files: Mapping[str, str], **kwargs: Any
) -> BuildOutcome:
    sdist = make_sdist(tmp_path / "in", "demo", "1.0", sdist_files)
    lines: list[str] = []
    outcome = build_node(
        node_for(sdist),
        root,
        workdir=tmp_path / "work",
        tools=tools,
        pip_cache=tmp_path / "pip-cache",
        on_line=lines.append,
        **kwargs,
    )
    assert outcome.log.read_text().count(PHASE_PREFIX) >= 2
    assert any(line.startswith(PHASE_PREFIX + "fetch") for line in lines)
    return outcome


# --- step --------------------------------------------------------------------------
def test_pure_package_builds_checks_and_smokes(tmp_path: Path, tools: Tools) -> None:
    root = FakeRoot()
    outcome = run_step(
        tmp_path,
        root,
        tools,
        PURE_SDIST,
        env={"CFLAGS": "-O1"},
        constraints=["cython<3"],
        extra_index=["https://x.example/simple"],
    )
    assert outcome.status is NodeStatus.BUILT, outcome.reason
    assert outcome.wheel is not None and outcome.wheel.name == "demo-1.0-py3-none-any.whl"
    assert outcome.smoke is not None and outcome.smoke.modules == ("demo",)
    build_call = next(c for c in root.calls if "--wheel" in c[1])
    env = build_call[2]
    assert env["CFLAGS"] == "-O1"
    assert env["PIP_CONSTRAINT"].endswith("constraints.txt")
    assert env["PIP_FIND_LINKS"].split()[0] == str(tools.seed)
    assert env["PIP_EXTRA_INDEX_URL"].split()[0] == "https://x.example/simple"
    assert env["PIP_CACHE_DIR"] == str(tmp_path / "pip-cache")
    assert [c[0] for c in root.calls] == ["build", "smoke"]
    assert outcome.durations.total >= outcome.durations.build


def test_uv_installer_when_available(
    tmp_path: Path, tools: Tools, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tools.uv_dir("s390x")
    monkeypatch.setattr("refinery.builder.step.ensure_uv", lambda t, arch: t.uv_dir(arch))
    root = FakeRoot()
    outcome = run_step(tmp_path, root, tools, PURE_SDIST, constraints=["cython<3"])
    assert outcome.status is NodeStatus.BUILT, outcome.reason
    _purpose, argv, env = next(c for c in root.calls if "--wheel" in c[1])
    assert argv[3] == f"{tools.site}:{home}"
    assert argv[4:7] == ("--wheel", "--installer", "uv")
    assert env["UV_FIND_LINKS"] == str(tools.seed)
    assert env["UV_CACHE_DIR"] == str(tmp_path / "pip-cache") + "/uv"
    assert env["UV_CONSTRAINT"] == env["PIP_CONSTRAINT"]


def test_uv_env_translation() -> None:
    env = uv_env(
        {
            "PIP_CACHE_DIR": "/c",
            "PIP_FIND_LINKS": "/a /b",
            "PIP_INDEX_URL": "https://i/simple",
            "PIP_EXTRA_INDEX_URL": "https://x/simple https://y/simple",
            "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
            "PIP_DEFAULT_TIMEOUT": "180",
        }
    )
    assert env == {
        "UV_CACHE_DIR": "/c/uv",
        "UV_NO_PROGRESS": "1",
        "UV_FIND_LINKS": "/a,/b",
        "UV_INDEX_URL": "https://i/simple",
        "UV_EXTRA_INDEX_URL": "https://x/simple https://y/simple",
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        "UV_HTTP_TIMEOUT": "180",
    }


def test_unknown_installer_is_a_programming_error(tmp_path: Path, tools: Tools) -> None:
    with pytest.raises(ValueError, match="installer must be one of"):
        run_step(tmp_path, FakeRoot(), tools, PURE_SDIST, installer="conda")


def test_silent_pure_python_fallback_fails(tmp_path: Path, tools: Tools) -> None:
    root = FakeRoot()
    root.build_lines = [
        "building 'demo._speedups' extension",
        "error: command 'gcc' failed: No such file or directory",
        "WARNING: The C extension could not be compiled, speedups are not enabled.",
        "Successfully built demo-1.0-py3-none-any.whl",
    ]
    outcome = run_step(tmp_path, root, tools, NATIVE_SDIST)
    assert outcome.status is NodeStatus.FAILED
    assert "silent pure-Python fallback" in outcome.reason
    assert "src/demo/_speedups.c" in outcome.reason
    assert "error: command 'gcc' failed: No such file or directory" in outcome.matched_lines
    assert any("could not be compiled" in line for line in outcome.matched_lines)
    assert [c[0] for c in root.calls] == ["build"]  # never smoke-tested


def test_foreign_architecture_fails(tmp_path: Path, tools: Tools) -> None:
    root = FakeRoot()
    root.wheel_files = {"demo/_s.so": X86_ELF, "demo/__init__.py": b""}
    outcome = run_step(tmp_path, root, tools, NATIVE_SDIST)
    assert outcome.status is NodeStatus.FAILED
    assert "another architecture: demo/_s.so" in outcome.reason


def test_build_failure_reports_exit_and_lines(tmp_path: Path, tools: Tools) -> None:
    root = FakeRoot()
    root.build_exit = 1
    root.build_lines = ["compiling", "fatal error: yaml.h: No such file or directory"]
    outcome = run_step(tmp_path, root, tools, NATIVE_SDIST)
    assert outcome.status is NodeStatus.FAILED
    assert outcome.exit_code == 1
    assert outcome.reason == "wheel build failed with exit code 1"
    assert outcome.matched_lines == ("fatal error: yaml.h: No such file or directory",)


def test_missing_python_is_missing(tmp_path: Path, tools: Tools) -> None:
    sdist = make_sdist(tmp_path / "in", "demo", "1.0", PURE_SDIST)
    outcome = build_node(
        node_for(sdist, python="3.13"), FakeRoot(), workdir=tmp_path / "w", tools=tools
    )
    assert outcome.status is NodeStatus.MISSING
    assert "no Python 3.13" in outcome.reason


def test_recipe_failure(tmp_path: Path, tools: Tools) -> None:
    root = FakeRoot()
    root.recipe_fails = True
    outcome = run_step(tmp_path, root, tools, PURE_SDIST, system_packages=["libnope-dev"])
    assert outcome.status is NodeStatus.SYSTEM_RECIPE_FAILED
    assert root.installed == [("libnope-dev",)]
    assert "libnope-dev" in outcome.reason


def test_sha256_mismatch_fails(tmp_path: Path, tools: Tools) -> None:
    sdist = make_sdist(tmp_path / "in", "demo", "1.0", PURE_SDIST)
    node = node_for(sdist)
    bad = PlanNode(
        node.name,
        node.version,
        node.python,
        node.status,
        "",
        True,
        sdist=FileRef(sdist.name, sdist.as_uri(), "0" * 64),
    )
    outcome = build_node(bad, FakeRoot(), workdir=tmp_path / "w", tools=tools)
    assert outcome.status is NodeStatus.FAILED
    assert "sha256 mismatch" in outcome.reason


def test_why_lines_keeps_the_last_matches() -> None:
    lines = ["ok", "error: one", "==> build: x", *[f"error {i}" for i in range(30)]]
    picked = why_lines(lines, limit=5)
    assert picked == tuple(f"error {i}" for i in range(25, 30))


# --- artifacts ---------------------------------------------------------------------
def test_elf_machine() -> None:
    assert artifacts.elf_machine(S390X_ELF[:20]) == 22
    assert artifacts.elf_machine(X86_ELF[:20]) == 62
    assert artifacts.elf_machine(b"#!/bin/sh\n" * 3) is None


def test_inspect_wheel_from_record(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "pkg",
        "1",
        {
            "pkg/__init__.py": b"",
            "pkg/_c.cpython-311-s390x-linux-gnu.so": S390X_ELF,
            "single.py": b"",
            "_cffi_backend.cpython-311-s390x-linux-gnu.so": S390X_ELF,
            "tests/test_x.py": b"",
            "pkg-1.data/scripts/tool": b"",
        },
        tag="cp311-cp311-linux_s390x",
    )
    info = artifacts.inspect_wheel(wheel)
    assert info.top_level == ("pkg", "single", "_cffi_backend")
    assert len(info.elf) == 2 and not info.is_pure
    assert info.foreign_elf("s390x") == ()
    assert info.foreign_elf("x86_64") == tuple(name for name, _ in info.elf)


def test_inspect_wheel_prefers_top_level_txt(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "pkg",
        "1",
        {"pkg/__init__.py": b"", "other.py": b"", "pkg-1.dist-info/top_level.txt": b"pkg\n"},
    )
    assert artifacts.inspect_wheel(wheel).top_level == ("pkg",)


def test_native_sources(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/a.pyx").write_text("")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/b.c").write_text("")
    found = artifacts.native_sources(tmp_path)
    assert found.files == ("src/a.pyx",) and found.expected
    (tmp_path / "src/a.pyx").unlink()
    assert not artifacts.native_sources(tmp_path).expected
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["maturin>=1"]\nbuild-backend = "maturin"\n'
    )
    assert artifacts.native_sources(tmp_path).backend == "maturin"


def test_unpack_rejects_escaping_members(tmp_path: Path) -> None:
    bad = tmp_path / "bad-1.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("../evil")
        info.size = 0
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(SdistError, match="escapes"):
        artifacts.unpack_sdist(bad, tmp_path / "out")


def test_fetch_sdist_local_and_mismatch(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "in", "demo", "1.0", PURE_SDIST)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    got = artifacts.fetch_sdist(sdist.as_uri(), digest.upper(), tmp_path / "dl")
    assert got.read_bytes() == sdist.read_bytes()
    with pytest.raises(SdistError, match="sha256 mismatch"):
        artifacts.fetch_sdist(str(sdist), "1" * 64, tmp_path / "dl2")
    with pytest.raises(SdistError, match="cannot fetch"):
        artifacts.fetch_sdist((tmp_path / "none.tar.gz").as_uri(), None, tmp_path / "dl3")


# --- proc --------------------------------------------------------------------------
def test_run_streams_and_logs(tmp_path: Path) -> None:
    seen: list[str] = []
    log = tmp_path / "logs" / "a.log"
    result = proc.run(["sh", "-c", "echo one; echo two >&2; exit 3"], on_line=seen.append, log=log)
    assert result.exit_code == 3 and not result.ok
    assert sorted(seen) == ["one", "two"]
    assert "one" in log.read_text() and log.read_text().startswith("$ sh -c")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_run_timeout_kills_the_whole_tree(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = proc.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; sleep 300"], timeout=1.0)
    assert result.timed_out and result.exit_code == -9
    assert time.monotonic() - started < 10
    assert "timed out" in result.tail[-1]
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


# --- runner ------------------------------------------------------------------------
def test_build_plan_records_waves_and_offers_wheels(
    tmp_path: Path, tools: Tools, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("refinery.builder.step.ensure_tools", lambda: tools)
    first = make_sdist(tmp_path / "in", "base", "1.0", PURE_SDIST)
    second = make_sdist(tmp_path / "in", "app", "1.0", PURE_SDIST)
    missing = node_for(second, "app", python="3.13", wave=1)
    nodes = (node_for(first, "base", wave=0), node_for(second, "app", wave=1), missing)
    plan = Plan(
        "p1", ("r.txt",), (Target(),), nodes, ((nodes[0].key,), (nodes[1].key, missing.key)), {}
    )
    store = Store.open(str(tmp_path / "store"))
    root = FakeRoot()
    events: list[BuildEvent] = []
    summary = build_plan(
        plan, store, root, on_event=events.append, workdir=tmp_path / "run", jobs=2
    )
    assert root.prepared
    assert summary.counts() == {"built": 2, "missing": 1}
    assert summary.ok
    # the wave-1 build saw the wave-0 wheel in its find-links directory
    assert ["base-1.0-py3-none-any.whl"] in root.seen_links
    record = store.get_record("base", "1.0", "3.11")
    assert record is not None and record.status is NodeStatus.BUILT
    assert record.wheel is not None and record.wheel.filename == "base-1.0-py3-none-any.whl"
    (attempt,) = record.attempts
    assert attempt.n == 1 and attempt.backend == "fake" and attempt.image == "fake@sha256:0"
    assert attempt.exit == 0 and attempt.status == "built" and attempt.ended
    assert attempt.log == "logs/base/1.0/3.11/1.log"
    assert store.blobs.get(attempt.log) is not None
    assert [e.kind for e in record.events] == ["leased", "building", "built"]
    assert record.lease_expires is None
    gone = store.get_record("app", "1.0", "3.13")
    assert gone is not None and gone.status is NodeStatus.MISSING
    kinds = [e.kind for e in events]
    assert kinds.count("wave") == 2 and "line" in kinds and kinds[-1] == "finished"
    # a second run finds the wheel built and does not lease again
    again = build_plan(plan, store, root, only=[nodes[0].key], workdir=tmp_path / "run2")
    assert again.results[0].status is NodeStatus.BUILT
    assert "already built" in again.results[0].reason


def test_build_plan_retries_with_a_fix(
    tmp_path: Path, tools: Tools, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("refinery.builder.step.ensure_tools", lambda: tools)
    sdist = make_sdist(tmp_path / "in", "yamlish", "1.0", NATIVE_SDIST)
    node = node_for(sdist, "yamlish")
    plan = Plan("p2", (), (Target(),), (node,), ((node.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    root = FakeRoot()
    root.build_exit = 1
    root.build_lines = ["fatal error: yaml.h: No such file or directory"]

    def advise(n: PlanNode, outcome: BuildOutcome, attempt: int) -> Fix | None:
        if "yaml.h" in " ".join(outcome.matched_lines):
            root.build_exit = 0  # the fix works
            root.wheel_files = {"yamlish/__init__.py": b""}
            root.build_lines = ["ok"]
            return Fix(
                hint_ids=("libyaml",),
                recipes=("apt: libyaml-dev",),
                system_packages=("libyaml-dev",),
            )
        return None

    summary = build_plan(plan, store, root, advise=advise, workdir=tmp_path / "run")
    # the fake wheel is pure although the sdist has C sources: the fallback check fails it
    record = store.get_record("yamlish", "1.0", "3.11")
    assert record is not None
    assert [a.status for a in record.attempts] == ["failed", "failed"]
    assert record.attempts[1].hint_ids == ("libyaml",)
    assert root.installed == [("libyaml-dev",)]
    assert "retry" in [e.kind for e in record.events]
    assert summary.results[0].attempts == 2
    assert "silent pure-Python fallback" in record.reason
    assert json.loads(store.blobs.get("records/yamlish/1.0/3.11.json")[0])["status"] == "failed"  # type: ignore[index]


def test_a_crashing_build_is_recorded_and_the_run_goes_on(
    tmp_path: Path, tools: Tools, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("refinery.builder.step.ensure_tools", lambda: tools)
    bad = make_sdist(tmp_path / "in", "bad", "1.0", PURE_SDIST)
    good = make_sdist(tmp_path / "in", "good", "1.0", PURE_SDIST)
    nodes = (node_for(bad, "bad"), node_for(good, "good"))
    plan = Plan("p3", (), (Target(),), nodes, ((nodes[0].key, nodes[1].key),), {})
    store = Store.open(str(tmp_path / "store"))
    root = FakeRoot()
    real_run = FakeSession.run

    def run(self: FakeSession, argv: Sequence[str], **kwargs: Any) -> ProcResult:
        if "--wheel" in argv and "bad-1.0" in argv[-1]:
            raise OSError("disk full")
        return real_run(self, argv, **kwargs)

    monkeypatch.setattr(FakeSession, "run", run)
    summary = build_plan(plan, store, root, workdir=tmp_path / "run")
    assert summary.counts() == {"failed": 1, "built": 1}
    record = store.get_record("bad", "1.0", "3.11")
    assert record is not None and record.status is NodeStatus.FAILED
    assert record.reason == "internal error: disk full"
    log = store.blobs.get("logs/bad/1.0/3.11/1.log")
    assert log is not None and b"OSError: disk full" in log[0]


def test_create_buildroot_reuses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from refinery.builder import create_buildroot, rootfs_image

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = rootfs_image.RootfsSpec()
    tarball = rootfs_image.tarball_path(spec)
    tarball.parent.mkdir(parents=True)
    tarball.write_bytes(b"x")
    tarball.with_name(f"{spec.key}.json").write_text(
        json.dumps({"sha256": "ab" * 32, "mirror": "http://m", "created_seconds": 1.0})
    )

    def no_create(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not run mmdebstrap")

    monkeypatch.setattr(rootfs_image, "create", no_create)
    image = create_buildroot()
    assert image.tarball == tarball
    assert image.digest == f"{spec.key}@sha256:{'ab' * 32}"
    with pytest.raises(AssertionError, match="must not run"):
        create_buildroot(force=True)


def test_node_selection_accepts_any_spelling() -> None:
    from refinery.builder.runner import _normal_selector, selected

    node = PlanNode("markupsafe", "2.1.5", "3.11", NodeStatus.PENDING, "", True)
    for spelling in ("MarkupSafe==2.1.5", "markupsafe==2.1.5@3.11", "Markup_Safe==2.1.5"):
        wanted = {_normal_selector(spelling)}
        assert selected(node, wanted) is (spelling != "Markup_Safe==2.1.5")
    assert not selected(node, {_normal_selector("markupsafe==2.1.5@3.12")})


def test_auditwheel_runs_inside_when_the_root_has_it(
    tmp_path: Path, tools: Tools, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeSession, "host_auditwheel", False)
    root = FakeRoot()
    root.wheel_files = {"demo/_s.so": S390X_ELF, "demo/__init__.py": b""}
    outcome = run_step(tmp_path, root, tools, NATIVE_SDIST)
    calls = [argv for _purpose, argv, _env in root.calls if argv[0] == "auditwheel"]
    wheel = str(tmp_path / "work/dist/demo-1.0-py3-none-any.whl")
    assert calls == [
        ("auditwheel", "show", wheel),
        ("auditwheel", "repair", "-w", str(tmp_path / "work/wheelhouse"), wheel),
    ]
    # the fake repair writes nothing: the step says so instead of passing
    assert outcome.status is NodeStatus.FAILED
    assert outcome.reason == "auditwheel repair failed"


@pytest.mark.unit
def test_build_environment_is_pinned_to_the_planned_build_dependencies() -> None:
    from refinery.builder.runner import planned_constraints
    from refinery.core.models import NodeStatus, Plan, PlanNode

    def mk(name: str, version: str, status: NodeStatus, build: tuple[str, ...] = ()) -> PlanNode:
        return PlanNode(name, version, "3.11", status, "", False, build_deps=build)

    app = mk(
        "scipy",
        "1.14.1",
        NodeStatus.PENDING,
        ("numpy==2.1.3@3.11", "meson-python==0.17.1@3.11", "ghost==>=1@3.11"),
    )
    plan = Plan(
        "p",
        (),
        (),
        (
            app,
            mk("numpy", "2.1.3", NodeStatus.PENDING),
            mk("meson-python", "0.17.1", NodeStatus.REUSED),
            mk("ghost", ">=1", NodeStatus.MISSING),
        ),
        (),
        {},
    )
    assert planned_constraints(plan, app) == ("numpy==2.1.3", "meson-python==0.17.1")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        (None, ("setuptools>=40.8.0", "cython<3")),
        ('[project]\nname = "x"\n', ("setuptools>=40.8.0", "cython<3")),
        (
            '# keep me\n[build-system]\nrequires = [\n  "setuptools>=61",\n  "wheel",\n]\n'
            'build-backend = "setuptools.build_meta"\n\n[project]\nname = "x"\n',
            ("setuptools>=61", "wheel", "cython<3"),
        ),
        (
            '[build-system]\nbuild-backend = "flit_core.buildapi"\n[tool.x]\nrequires = [1]\n',
            ("setuptools>=40.8.0", "cython<3"),
        ),
    ],
)
def test_hint_build_requirements_are_added_to_the_sdist(
    tmp_path: Path, pyproject: str | None, expected: tuple[str, ...]
) -> None:
    import tomllib

    from refinery.builder.artifacts import add_build_requires

    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    assert add_build_requires(tmp_path, ["cython<3"]) == expected
    doc = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert tuple(doc["build-system"]["requires"]) == expected
    if pyproject and "keep me" in pyproject:
        text = (tmp_path / "pyproject.toml").read_text()
        assert text.startswith("# keep me\n")
        assert 'build-backend = "setuptools.build_meta"' in text
        assert doc["project"]["name"] == "x"
    if pyproject and "tool.x" in pyproject:
        assert doc["tool"]["x"]["requires"] == [1]  # another table's key is left alone
