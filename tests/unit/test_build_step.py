"""The build step and the runner against a fake build root (no emulation, no network,
no subprocess: the steps here stop before the host's twine and pip would run; the ones
that go all the way are in tests/integration/test_build_step_host.py)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from fixtures.buildroot import (
    NATIVE_SDIST,
    PURE_SDIST,
    S390X_ELF,
    X86_ELF,
    FakeRoot,
    FakeSession,
    node_for,
    ready_cache,
    run_step,
)
from fixtures.sdists import write_sdist
from fixtures.wheels import write_wheel

from refinery.builder import artifacts
from refinery.builder.errors import SdistError
from refinery.builder.options import AttemptSpec, BuildOptions, RunOptions
from refinery.builder.runner import Fix, build_plan
from refinery.builder.step import BuildOutcome, build_node, uv_env, why_lines
from refinery.core.cache import CacheRoot
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.store import Store


@pytest.fixture(autouse=True)
def no_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never download uv; the uv path is tested with a fake home."""
    monkeypatch.setattr("refinery.builder.phases.ensure_uv", lambda tools, arch: None)


@pytest.fixture
def cache(tmp_path: Path) -> CacheRoot:
    return ready_cache(tmp_path / "cache")[0]


# --- step --------------------------------------------------------------------------
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


def test_unknown_installer_is_a_programming_error(cache: CacheRoot) -> None:
    with pytest.raises(ValueError, match="installer must be one of"):
        BuildOptions(cache=cache, installer="conda")  # type: ignore[arg-type]


def test_silent_pure_python_fallback_fails(tmp_path: Path, cache: CacheRoot) -> None:
    root = FakeRoot()
    root.build_lines = [
        "building 'demo._speedups' extension",
        "error: command 'gcc' failed: No such file or directory",
        "WARNING: The C extension could not be compiled, speedups are not enabled.",
        "Successfully built demo-1.0-py3-none-any.whl",
    ]
    outcome = run_step(tmp_path, root, cache, NATIVE_SDIST)
    assert outcome.status is NodeStatus.FAILED
    assert "silent pure-Python fallback" in outcome.reason
    assert "src/demo/_speedups.c" in outcome.reason
    assert "error: command 'gcc' failed: No such file or directory" in outcome.matched_lines
    assert any("could not be compiled" in line for line in outcome.matched_lines)
    assert [c[0] for c in root.calls] == ["build"]  # never smoke-tested


def test_foreign_architecture_fails(tmp_path: Path, cache: CacheRoot) -> None:
    root = FakeRoot()
    root.wheel_files = {"demo/_s.so": X86_ELF, "demo/__init__.py": b""}
    outcome = run_step(tmp_path, root, cache, NATIVE_SDIST)
    assert outcome.status is NodeStatus.FAILED
    assert "another architecture: demo/_s.so" in outcome.reason


def test_build_failure_reports_exit_and_lines(tmp_path: Path, cache: CacheRoot) -> None:
    root = FakeRoot()
    root.build_exit = 1
    root.build_lines = ["compiling", "fatal error: yaml.h: No such file or directory"]
    outcome = run_step(tmp_path, root, cache, NATIVE_SDIST)
    assert outcome.status is NodeStatus.FAILED
    assert outcome.exit_code == 1
    assert outcome.reason == (
        "fatal error: yaml.h: No such file or directory (log line 6; build exited 1)"
    )
    assert outcome.log.read_text().splitlines()[5] == root.build_lines[1]
    assert outcome.matched_lines == ("fatal error: yaml.h: No such file or directory",)


def test_missing_python_is_missing(tmp_path: Path, cache: CacheRoot) -> None:
    sdist = write_sdist(tmp_path / "in", "demo", "1.0", PURE_SDIST)
    outcome = build_node(
        node_for(sdist, python="3.13"),
        FakeRoot(),
        options=BuildOptions(cache=cache),
        spec=AttemptSpec(workdir=tmp_path / "w"),
    )
    assert outcome.status is NodeStatus.MISSING
    assert "no Python 3.13" in outcome.reason


def test_recipe_failure(tmp_path: Path, cache: CacheRoot) -> None:
    root = FakeRoot()
    root.recipe_fails = True
    outcome = run_step(tmp_path, root, cache, PURE_SDIST, system_packages=("libnope-dev",))
    assert outcome.status is NodeStatus.SYSTEM_RECIPE_FAILED
    assert root.installed == [("libnope-dev",)]
    assert "libnope-dev" in outcome.reason


def test_sha256_mismatch_fails(tmp_path: Path, cache: CacheRoot) -> None:
    sdist = write_sdist(tmp_path / "in", "demo", "1.0", PURE_SDIST)
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
    outcome = build_node(
        bad, FakeRoot(), options=BuildOptions(cache=cache), spec=AttemptSpec(workdir=tmp_path / "w")
    )
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
    wheel = write_wheel(
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
    wheel = write_wheel(
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
    sdist = write_sdist(tmp_path / "in", "demo", "1.0", PURE_SDIST)
    digest = artifacts.sha256_file(sdist)
    got = artifacts.fetch_sdist(sdist.as_uri(), digest.upper(), tmp_path / "dl")
    assert got.read_bytes() == sdist.read_bytes()
    with pytest.raises(SdistError, match="sha256 mismatch"):
        artifacts.fetch_sdist(str(sdist), "1" * 64, tmp_path / "dl2")
    with pytest.raises(SdistError, match="cannot fetch"):
        artifacts.fetch_sdist((tmp_path / "none.tar.gz").as_uri(), None, tmp_path / "dl3")


# --- runner ------------------------------------------------------------------------
def test_build_plan_retries_with_a_fix(tmp_path: Path, cache: CacheRoot) -> None:
    sdist = write_sdist(tmp_path / "in", "yamlish", "1.0", NATIVE_SDIST)
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

    options = RunOptions(build=BuildOptions(cache=cache), workdir=tmp_path / "run")
    summary = build_plan(plan, store, root, options, advise=advise)
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


def test_create_buildroot_reuses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from refinery.builder import create_buildroot, rootfs_image

    cache = CacheRoot(tmp_path).roots
    spec = rootfs_image.RootfsSpec()
    tarball = rootfs_image.tarball_path(spec, cache)
    tarball.parent.mkdir(parents=True)
    tarball.write_bytes(b"x")
    tarball.with_name(f"{spec.key}.json").write_text(
        json.dumps({"sha256": "ab" * 32, "mirror": "http://m", "created_seconds": 1.0})
    )

    def no_create(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not run mmdebstrap")

    monkeypatch.setattr(rootfs_image, "create", no_create)
    image = create_buildroot(cache)
    assert image.tarball == tarball
    assert image.digest == f"{spec.key}@sha256:{'ab' * 32}"
    with pytest.raises(AssertionError, match="must not run"):
        create_buildroot(cache, force=True)
    with pytest.raises(AssertionError, match="must not run"):
        create_buildroot(CacheRoot(tmp_path / "elsewhere").roots)  # another cache root


def test_node_selection_accepts_any_spelling() -> None:
    from refinery.builder.runner import _normal_selector, selected

    node = PlanNode("markupsafe", "2.1.5", "3.11", NodeStatus.PENDING, "", True)
    for spelling in ("MarkupSafe==2.1.5", "markupsafe==2.1.5@3.11", "Markup_Safe==2.1.5"):
        wanted = {_normal_selector(spelling)}
        assert selected(node, wanted) is (spelling != "Markup_Safe==2.1.5")
    assert not selected(node, {_normal_selector("markupsafe==2.1.5@3.12")})


def test_auditwheel_runs_inside_when_the_root_has_it(
    tmp_path: Path, cache: CacheRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeSession, "host_auditwheel", False)
    root = FakeRoot()
    root.wheel_files = {"demo/_s.so": S390X_ELF, "demo/__init__.py": b""}
    outcome = run_step(tmp_path, root, cache, NATIVE_SDIST)
    calls = [argv for _purpose, argv, _env in root.calls if argv[0] == "auditwheel"]
    wheel = str(tmp_path / "work/dist/demo-1.0-py3-none-any.whl")
    assert calls == [
        ("auditwheel", "show", wheel),
        ("auditwheel", "repair", "-w", str(tmp_path / "work/wheelhouse"), wheel),
    ]
    # the fake repair writes nothing: the step says so instead of passing
    assert outcome.status is NodeStatus.FAILED
    assert outcome.reason == "auditwheel repair failed"


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


def test_a_fix_constraint_replaces_the_plans_pin_of_that_package() -> None:
    """llvmlite 0.44: the plan pins setuptools==84.2.1, the hint setuptools-dry-run
    asks for setuptools<81; both together cannot be installed."""
    from refinery.builder.runner import with_fix_constraints

    planned = ("setuptools==84.2.1", "numpy==2.1.3")
    assert with_fix_constraints(planned, ("SetupTools<81",)) == ("numpy==2.1.3", "SetupTools<81")
    assert with_fix_constraints(planned, ("cython<3",)) == (*planned, "cython<3")
    assert with_fix_constraints(planned, ()) == planned


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
