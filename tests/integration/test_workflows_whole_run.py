"""Whole runs of main.yml, as GitHub would run them (tests/fixtures/actions.GitHubSim):
every job's own steps from the YAML in ``needs`` order, job outputs, ``if:``, matrices,
the reusable build.yml and publish.yml, artifacts within a run, and the
``workflow_dispatch``es `refinery advance` makes through a fake GitHub API, run in turn.

A plan of three waves (tests/fixtures/waves: wave-c's build imports wave-b, whose build
imports wave-a) builds for real with the cross backend, one wave per run; a shard whose
runner is lost is re-dispatched with exactly its node; a push whose pending run was
cancelled is planned by the next push. The store ends with everything, and pip installs
from the index the publish job derived."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fixtures.actions import REPOSITORY, GitHubSim, WorkflowRun, git, github_context
from fixtures.need import unavailable
from fixtures.pyindex import IndexServer

from refinery.core.models import BuildRecord, NodeStatus
from refinery.store import Store

ROOT = Path(__file__).resolve().parents[2]
WAVES = ROOT / "tests" / "fixtures" / "waves"
NAMES = ("wave-a", "wave-b", "wave-c")


def _sdist(source: Path, out: Path) -> str:
    spec = importlib.util.spec_from_file_location(f"_wb_{source.name}", source / "_wavebackend.py")
    assert spec is not None and spec.loader is not None
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    return str(backend.build_sdist(str(out)))


@pytest.fixture(scope="module")
def wave_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A simple index serving the three sdists (no wheels: each must be built)."""
    root = tmp_path_factory.mktemp("wave-index")
    files = root / "files"
    files.mkdir()
    for name in NAMES:
        filename = _sdist(WAVES / name, files)
        digest = hashlib.sha256((files / filename).read_bytes()).hexdigest()
        page = root / "simple" / f"refinery-fixture-{name}"
        page.mkdir(parents=True)
        (page / "index.html").write_text(
            f'<html><body><a href="../../files/{filename}#sha256={digest}">{filename}</a>'
            "</body></html>\n"
        )
    with IndexServer(root) as server:
        yield server.url


def _commit(repo: Path, files: Mapping[str, str], message: str) -> str:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "origin"
    (root / "requirements").mkdir(parents=True)
    shutil.copytree(ROOT / "hints", root / "hints")
    shutil.copy(ROOT / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", root / "docs", ignore=shutil.ignore_patterns("status"))
    (root / "requirements" / "README").write_text("requirement files\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    return root


class FakeGitHub:
    """Records workflow_dispatch calls (the only API calls the runs make)."""

    def __init__(self, httpserver: Any) -> None:
        self.dispatches: list[tuple[str, dict[str, Any]]] = []
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self._handle)
        self.url = httpserver.url_for("/api/v3")

    def _handle(self, request: Any) -> Any:
        from werkzeug import Response

        m = re.search(r"/actions/workflows/([^/]+)/dispatches$", request.path)
        if request.method == "POST" and m:
            self.dispatches.append((m.group(1), json.loads(request.get_data())))
        return Response("", 204)

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        out, self.dispatches = self.dispatches, []
        return out


def _warm_cache() -> Path:
    """The machine's cache root, as a runner's restored cache: the build root and the
    cross toolchain (keyed by its absolute path, so never a temporary copy) are reused."""
    warm = Path(os.environ.get("REFINERY_CACHE") or Path.home() / ".cache" / "refinery")
    if not (warm / "roots").is_dir():
        unavailable(f"no warm build root under {warm} (refinery buildroot create)")
    return warm


def _ok(run: WorkflowRun) -> None:
    assert not run.failures(), run.failures()


def _follow(
    sim: GitHubSim, fake: FakeGitHub, sha: str, first: WorkflowRun, limit: int = 8
) -> list[WorkflowRun]:
    """Run every dispatch the runs make, in order, until none is left."""
    runs = [first]
    queue = fake.take()
    while queue:
        assert len(runs) < limit, "the dispatch chain does not end"
        workflow, body = queue.pop(0)
        assert body["ref"] == "main"
        ctx = github_context(
            "workflow_dispatch", sha=sha, inputs=body["inputs"], run_id=100 + len(sim.runs)
        )
        runs.append(sim.run(workflow, ctx, body["inputs"]))
        queue += fake.take()
    return runs


def _record(store: Path, name: str) -> dict[str, Any]:
    path = store / "records" / f"refinery-fixture-{name}" / "1.0" / "3.11.json"
    return dict(json.loads(path.read_text()))


def test_main_yml_whole_run(
    repo: Path, tmp_path: Path, wave_index: str, httpserver: Any, rootfs_root: Any
) -> None:
    from refinery.builder import crosstools

    if crosstools.missing_tools("s390x"):
        unavailable("the cross backend needs crossbuild-essential-s390x")
    fake = FakeGitHub(httpserver)
    store = tmp_path / "store"
    cache = _warm_cache()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "REFINERY_"))}
    env.update(
        REFINERY_INDEX_URL=wave_index,
        REFINERY_CACHE=str(cache),
        GITHUB_API_URL=fake.url,
        GITHUB_REPOSITORY=REPOSITORY,
        GITHUB_TOKEN="ghs_test",  # the step's env gives it; PyGithub needs one
        REFINERY_GITHUB_RETRY="0",
    )
    lost = {"done": False}

    def lose_the_wave_1_runner(run: int, job: str, where: Mapping[str, Any]) -> tuple[str, ...]:
        if job == "build.yml:build" and where.get("wave") == 1 and not lost["done"]:
            lost["done"] = True
            return ("Build",)  # the runner is lost before the build starts
        return ()

    sim = GitHubSim(
        repo,
        tmp_path / "sim",
        host_env=env,
        vars_={"REFINERY_STORE": str(store), "REFINERY_BACKEND": "cross"},
        fail=lose_the_wave_1_runner,
    )
    base = git(repo, "rev-parse", "HEAD")
    c1 = _commit(repo, {"requirements/waves.txt": "refinery-fixture-wave-c==1.0\n"}, "waves")

    # --- push: plan (3 waves), wave 0, publish; the chain of dispatched runs ---------------
    first = sim.run("main.yml", github_context("push", sha=c1, before=base, run_id=1), {})
    _ok(first)
    plan_job = first.job("main.yml:plan")
    assert plan_job.outputs["waves"] == "3" and plan_job.outputs["build"] == "true"
    plan_id = plan_job.outputs["plan_id"]
    runs = _follow(sim, fake, c1, first)
    waves_run = [(r.inputs["wave"], r.inputs["nodes"]) for r in runs]
    assert waves_run == [
        (0.0, ""),
        (1.0, ""),  # its shard's runner was lost: no record, nothing uploaded
        (1.0, "refinery-fixture-wave-b==1.0@3.11"),  # re-dispatched: exactly that node
        (2.0, ""),
    ]
    assert all(r.inputs["plan"] == plan_id for r in runs[1:])
    lost_run = runs[1]
    assert lost_run.job("build.yml:build").step("Build").outcome == "failure"
    for r in (runs[0], runs[2], runs[3]):
        _ok(r)
        # every job ran from the YAML in order: prepare, (plan), build, publish, derive, deploy
        ran = [key for key, _ in r.ran]
        assert ran[0] == "main.yml:prepare" and ran[-2:] == [
            "publish.yml:derive",
            "publish.yml:deploy",
        ]
        assert ran.index("build.yml:build") < ran.index("publish.yml:publish")
    # each shard uploaded only its own output
    for r in runs:
        staged = r.artifacts / f"staging-w{int(r.inputs['wave'])}-s0" / "records"
        if staged.exists():
            names = {p.name for p in staged.iterdir()}
            assert len(names) == 1, names

    # --- the store has everything; the timeline says what happened --------------------------
    records = {name: _record(store, name) for name in NAMES}
    assert {n: r["status"] for n, r in records.items()} == dict.fromkeys(NAMES, "built")
    b = records["wave-b"]
    kinds = [e["kind"] for e in b["events"]]
    assert kinds.count("redispatch") == 1 and "actions-run" in kinds
    assert [a["n"] for a in b["attempts"]] == [1]
    redispatch = next(e for e in b["events"] if e["kind"] == "redispatch")
    # the lost run had announced b as leased (live state): the lease it left is re-dispatched
    assert "left leased" in redispatch["message"] and "/actions/runs/" in redispatch["message"]
    announced = [e for e in b["events"] if e["kind"] == "announced"]
    assert len(announced) == 2  # by the lost run, then by the run that built it
    assert all("/actions/runs/" in e["message"] for e in announced)
    assert any("/actions/runs/" in e["message"] for e in b["events"] if e["kind"] == "actions-run")
    # the run and the job (its live log: <run>/job/<job.check_run_id>) on record and attempts
    job_page = re.compile(r"^https://github\.com/octo/farm/actions/runs/\d+/job/\d+$")
    assert job_page.match(b["job_url"]) and "/attempts/" in b["run_url"]
    assert all(job_page.match(a["job_url"]) for a in b["attempts"])
    mark = json.loads((store / "state" / "planned.json").read_text())
    assert mark["commit"] == c1 and mark["plan_id"] == plan_id

    # --- pip installs the chain from the index the last publish derived ---------------------
    index = runs[-1].job("publish.yml:derive")
    assert index.status == "success"
    index_dir = next((tmp_path / "sim").glob(f"run-{runs[-1].number}/jobs/publish.yml-derive-*"))
    target = tmp_path / "installed"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--target",
            str(target),
            "--index-url",
            (index_dir / "_refinery" / "index" / "simple").as_uri(),
            "refinery-fixture-wave-c==1.0",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    wheel_c = next(target.glob("refinery_fixture_wave_c/__init__.py")).read_text()
    assert "BUILT_WITH = {'refinery_fixture_wave_b': 'b'}" in wheel_c
    assert (target / "refinery_fixture_wave_a" / "__init__.py").exists()

    # --- a push whose pending run was cancelled loses nothing --------------------------------
    c2 = _commit(repo, {"requirements/two.txt": "refinery-fixture-wave-b==1.0\n"}, "two")
    c3 = _commit(repo, {"requirements/three.txt": "refinery-fixture-wave-a==1.0\n"}, "three")
    # c2's run was pending in the concurrency group and got cancelled by c3's
    third = sim.run("main.yml", github_context("push", sha=c3, before=c2, run_id=3), {})
    _ok(third)
    assert third.job("main.yml:plan").step("inputs").outputs["files"] == (
        "requirements/three.txt requirements/two.txt"
    )
    inputs = {
        json.loads(p.read_text())["path"]: json.loads(p.read_text())
        for p in (store / "inputs").glob("*.json")
    }
    assert inputs["requirements/two.txt"]["commit"] == c3
    assert json.loads((store / "state" / "planned.json").read_text())["commit"] == c3
    assert fake.take() == []  # nothing to build: both were built before
    counts = Store.open(str(store))
    assert all(r.status is NodeStatus.BUILT for r in counts.records())
    assert len(list(zipfile.ZipFile(p) for p in (store / "wheels").rglob("*.whl"))) == 3


def test_a_redispatched_node_continues_its_attempts(
    tmp_path: Path, wave_index: str, rootfs_root: Any
) -> None:
    """A re-dispatch used to start again at attempt 1: publish overwrote the store's
    attempt 1 and the new log collided with the write-once key. The build job reads the
    node's record from the snapshot beneath its staging store and goes on at 2."""
    from refinery.builder import crosstools
    from refinery.core.models import Attempt, Plan

    if crosstools.missing_tools("s390x"):
        unavailable("the cross backend needs crossbuild-essential-s390x")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "REFINERY_"))}
    env.update(REFINERY_INDEX_URL=wave_index, REFINERY_CACHE=str(_warm_cache()))
    store_dir, staging, base = tmp_path / "store", tmp_path / "staging", tmp_path / "base"

    def cli(*args: str, extra: Mapping[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "refinery", *args],
            cwd=tmp_path,
            env={**env, **(extra or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    (tmp_path / "a.txt").write_text("refinery-fixture-wave-a==1.0\n")
    cli("--store", str(store_dir), "plan", "a.txt", "-o", "plan.json")
    plan = Plan.from_json(json.loads((tmp_path / "plan.json").read_text()))
    store = Store.open(str(store_dir))
    store.put_plan(plan)
    key = "refinery-fixture-wave-a==1.0@3.11"
    log = store.put_log("refinery-fixture-wave-a", "1.0", "3.11", 1, b"the runner died\n")
    store.update_record(
        "refinery-fixture-wave-a",
        "1.0",
        "3.11",
        lambda _r: BuildRecord(
            "refinery-fixture-wave-a",
            "1.0",
            "3.11",
            NodeStatus.PENDING,
            plan_id=plan.plan_id,
            attempts=(Attempt(1, "2026-01-01T00:00:00Z", backend="cross", log=log),),
        ),
    )
    cli(
        "--store",
        str(store_dir),
        "snapshot",
        "-o",
        str(base),
        "--plan",
        plan.plan_id,
        "--nodes",
        key,
        "--plan-out",
        "stored-plan.json",
    )
    cli(
        "--store",
        str(staging),
        "--backend",
        "cross",
        "build",
        "stored-plan.json",
        "--node",
        key,
        extra={"REFINERY_STORE_BASE": str(base)},
    )
    staged = Store.open(str(staging))
    record = staged.get_record("refinery-fixture-wave-a", "1.0", "3.11")
    assert record is not None and record.status is NodeStatus.BUILT
    assert [a.n for a in record.attempts] == [1, 2]
    assert sorted(staged.blobs.list("logs/")) == ["logs/refinery-fixture-wave-a/1.0/3.11/2.log"]
    out = json.loads(cli("--store", str(store_dir), "publish", "--from", str(staging), "--json"))
    assert out["log_conflicts"] == []
    final = store.get_record("refinery-fixture-wave-a", "1.0", "3.11")
    assert final is not None and [a.n for a in final.attempts] == [1, 2]
    assert store.get_log(log) == b"the runner died\n"
