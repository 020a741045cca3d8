"""The jobs of .github/workflows, run for real: each job's own ``run:`` blocks (parsed
from the YAML, env values substituted) executed with bash against a local store and the
fixture index, so the workflows and the CLI cannot drift apart."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from fixtures.actions import (
    StepFailed,
    evaluate,
    git,
    github_context,
    interpolate,
    load,
    run_job,
)

from refinery.core.models import NodeStatus, Plan


# --- the jobs, run --------------------------------------------------------------------
def no_sigstore(action: str, *_: object) -> None:
    """Other actions pass; Sigstore is not reachable here (the attestation is tolerated)."""
    if action.startswith("actions/attest-build-provenance@"):
        raise StepFailed("no Sigstore in this test")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout: requirements/ with one file in the base commit, one added after."""
    root = tmp_path / "repo"
    (root / "requirements").mkdir(parents=True)
    (root / "hints").mkdir()
    (root / "requirements" / "old.txt").write_text("purepkg==1.0\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    (root / "requirements" / "demo.txt").write_text("cybuild==1.0\npurepkg==1.1\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "add demo")
    return root


@pytest.fixture
def host_env(fixture_index: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "REFINERY_"))}
    env["REFINERY_INDEX_URL"] = fixture_index
    env["REFINERY_CACHE"] = str(tmp_path / "cache")
    return env


def _store_json(store: Path, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((store / prefix).glob("*.json"))]


def test_main_plan_job_on_push(repo: Path, host_env: dict[str, str]) -> None:
    base = git(repo, "rev-parse", "HEAD~1")
    head = git(repo, "rev-parse", "HEAD")
    result = run_job(
        "main.yml",
        "plan",
        workdir=repo,
        host_env=host_env,
        context={
            "github": github_context("push", sha=head, before=base),
            "vars": {},
            "needs": {"prepare": {"result": "success", "outputs": {"since": ""}}},
        },
    )
    assert result.status == "success", [(s.name, s.stderr[-2000:]) for s in result.steps]
    assert result.step("inputs").outputs["files"] == "requirements/demo.txt"
    assert "Inputs failed" not in result.ran()
    out = result.outputs
    assert out["build"] == "true" and out["waves"] == "1"
    matrix = json.loads(out["matrix"])  # wave 0; later waves come from their own runs
    assert matrix["include"][0]["nodes"] == ["cybuild==1.0@3.11"]
    # the plan table went to the step summary; the plan and input status to staging
    assert "cybuild" in result.summary
    staging = repo / "_refinery" / "staging"
    (record,) = _store_json(staging, "inputs")
    assert record["status"] == "queued" and record["path"] == "requirements/demo.txt"
    assert record["commit"] == head and record["plan_id"] == out["plan_id"]
    assert (staging / "plans" / f"{out['plan_id']}.json").exists()
    plan = json.loads((repo / "_refinery" / "plan" / "plan.json").read_text())
    assert plan["plan_id"] == out["plan_id"]


def test_main_plan_job_respects_auto_build_off(repo: Path, host_env: dict[str, str]) -> None:
    result = run_job(
        "main.yml",
        "plan",
        workdir=repo,
        host_env=host_env,
        context={
            "github": github_context(
                "push",
                sha=git(repo, "rev-parse", "HEAD"),
                before=git(repo, "rev-parse", "HEAD~1"),
            ),
            "vars": {"AUTO_BUILD": "false"},
            "needs": {"prepare": {"result": "success", "outputs": {"since": ""}}},
        },
    )
    assert result.status == "success"
    assert result.outputs["build"] == "false"
    (record,) = _store_json(repo / "_refinery" / "staging", "inputs")
    assert record["status"] == "planned"
    doc = load("main.yml")
    assert not evaluate(
        doc["jobs"]["prepare"]["if"],
        {"github": github_context("push"), "vars": {"AUTO_PLAN": "false"}, "inputs": {}},
    )


def test_main_plan_job_records_a_failed_input(repo: Path, host_env: dict[str, str]) -> None:
    (repo / "requirements" / "demo.txt").write_text("cybuild==1.0\ngit+https://x/y.git\n")
    result = run_job(
        "main.yml",
        "plan",
        workdir=repo,
        host_env=host_env,
        context={
            "github": github_context("workflow_dispatch", sha="f" * 40),
            "inputs": {"inputs": "requirements/demo.txt", "build": True, "plan": ""},
            "needs": {"prepare": {"result": "success", "outputs": {"since": ""}}},
        },
    )
    assert result.status == "failure"
    assert result.step("plan").outcome == "failure"
    assert "::error file=requirements/demo.txt,line=2::" in result.step("plan").stderr
    assert "Inputs failed" in result.ran()
    (record,) = _store_json(repo / "_refinery" / "staging", "inputs")
    assert record["status"] == "failed" and "line 2" not in record["reason"]
    assert "requirements/demo.txt:2" in record["reason"] or "URL" in record["reason"]
    assert result.outputs["build"] == "false"


def test_pr_plan_job_writes_summary_and_comment_body(repo: Path, host_env: dict[str, str]) -> None:
    result = run_job(
        "plan.yml",
        "plan",
        workdir=repo,
        host_env=host_env,
        context={
            "github": {
                "event_name": "pull_request",
                "event": {
                    "pull_request": {
                        "number": 7,
                        "base": {"sha": git(repo, "rev-parse", "HEAD~1")},
                    }
                },
            }
        },
    )
    assert result.status == "success", [(s.name, s.stderr[-2000:]) for s in result.steps]
    pr = repo / "_refinery" / "pr"
    assert (pr / "number").read_text().strip() == "7"
    body = (pr / "comment.md").read_text()
    assert body.startswith("<!-- wheel-refinery:plan -->")
    assert "To build (1)" in body and "cybuild" in body and "Reused" in body
    assert "cybuild" in result.summary
    Plan.from_json(json.loads((pr / "plan.json").read_text()))


def test_main_plan_job_plans_since_the_last_planned_commit(
    repo: Path, host_env: dict[str, str]
) -> None:
    """The second push's run was cancelled while pending: the third plans both."""
    first = git(repo, "rev-parse", "HEAD~1")  # the store's last planned commit
    (repo / "requirements" / "third.txt").write_text("s390xpkg==2.0\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "third")
    result = run_job(
        "main.yml",
        "plan",
        workdir=repo,
        host_env=host_env,
        context={
            "github": github_context(
                "push",
                sha=git(repo, "rev-parse", "HEAD"),
                before=git(repo, "rev-parse", "HEAD~1"),
            ),
            "needs": {"prepare": {"result": "success", "outputs": {"since": first}}},
        },
        uses=lambda *_: None,
    )
    failed = [(s.name, s.stdout + s.stderr[-2000:]) for s in result.steps if s.outcome == "failure"]
    assert result.status == "success", failed
    assert result.step("inputs").outputs["files"] == "requirements/demo.txt requirements/third.txt"
    mark = json.loads((repo / "_refinery" / "staging" / "state" / "planned.json").read_text())
    assert mark["commit"] == git(repo, "rev-parse", "HEAD")


def test_build_job_builds_its_shard_with_the_chosen_backend(
    repo: Path, host_env: dict[str, str]
) -> None:
    """Call mode: the Build step's command line, with a stand-in ``refinery build``."""
    plan_dir = repo / "_refinery" / "plan"
    plan_dir.mkdir(parents=True)
    (plan_dir / "plan.json").write_text("{}")
    log = repo / "calls.log"
    fake = repo / "fakebin"
    fake.mkdir()
    fields = "$REFINERY_BACKEND|$REFINERY_STORE|${REFINERY_STORE_BASE:-}|$*"
    (fake / "refinery").write_text(f'#!/bin/sh\necho "{fields}" >> "{log}"\n')
    (fake / "refinery").chmod(0o755)
    seen: list[tuple[str, dict[str, Any]]] = []
    result = run_job(
        "build.yml",
        "build",
        workdir=repo,
        host_env=host_env,
        bin_dir=fake,
        context={
            "inputs": {
                "nodes": "a==1@3.11 b==2@3.11",
                "wave": 1,
                "shard": 3,
                "backend": "native",  # refinery.toml's, given by main.yml
                "runner": "s390x-large",
            },
            "github": github_context("push", run_id=99),
        },
        uses=lambda action, with_, _wd: seen.append((action.split("@")[0], with_)),
    )
    assert result.status == "success", [(s.name, s.stderr) for s in result.steps]
    actions = [a for a, _ in seen]
    assert "docker/setup-qemu-action" not in actions  # native: no emulation
    assert actions.count("actions/download-artifact") == 2  # plan + earlier waves
    upload = dict(seen)["actions/upload-artifact"]
    assert upload["name"] == "staging-w1-s3" and upload["path"] == "_refinery/staging"
    runs_on = load("build.yml")["jobs"]["build"]["runs-on"]
    assert interpolate(runs_on, {"inputs": {"runner": "s390x-large"}}) == "s390x-large"
    calls = log.read_text().splitlines()
    assert calls[0] == (
        "native|_refinery/staging|_refinery/base|"
        "build _refinery/plan/plan.json --node a==1@3.11 --node b==2@3.11"
    )
    assert re.fullmatch(
        r"native\|_refinery/staging\|\|stamp-run --url "
        r"https://github\.com/octo/farm/actions/runs/99/attempts/1 --job build w1 s3 "
        r"--job-id \d+",  # job.check_run_id: the job's page is <run>/job/<id>
        calls[1],
    ), calls[1]
    assert calls[2] == "native|_refinery/staging||status"


def _share_build_caches(cache: Path, warm: Path) -> None:
    """The job's own cache root, but with the machine's warm root filesystem, tools and
    pip cache (as a runner's restored cache would have them): no second mmdebstrap."""
    cache.mkdir(parents=True, exist_ok=True)
    for name in ("roots", "tools", "pip-cache"):
        (warm / name).mkdir(parents=True, exist_ok=True)
        (cache / name).symlink_to(warm / name, target_is_directory=True)


def test_build_job_really_builds_its_shard(
    repo: Path, host_env: dict[str, str], tmp_path: Path, rootfs_root: Any
) -> None:
    """The Build step exactly as build.yml runs it, no stand-in: the fixture C extension
    from the plan artifact, built in the emulated s390x root, lands in the staging store
    the job uploads."""
    from fixtures.sdists import make_sdist

    from refinery.core.models import FileRef, Plan, PlanNode, Target
    from refinery.plan import assign_waves, build_matrix
    from refinery.store import sha256_file

    sdist = make_sdist(Path(__file__).resolve().parents[1] / "fixtures" / "cext", tmp_path)
    node = PlanNode(
        "refinery-fixture-cext",
        "0.1.0",
        "3.11",
        NodeStatus.PENDING,
        "fixture",
        True,
        sdist=FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist)),
    )
    nodes, waves = assign_waves([node])
    plan = Plan(
        "wf-real",
        ("requirements/demo.txt",),
        (Target(),),
        tuple(nodes),
        tuple(tuple(w) for w in waves),
        {"include": [s.to_json() for s in build_matrix(waves)]},
    )
    plan_dir = repo / "_refinery" / "plan"
    plan_dir.mkdir(parents=True)
    (plan_dir / "plan.json").write_text(json.dumps(plan.to_json()))
    _share_build_caches(Path(host_env["REFINERY_CACHE"]), rootfs_root.cache.parent)
    result = run_job(
        "build.yml",
        "build",
        workdir=repo,
        host_env=host_env,
        timeout=900,
        context={
            "inputs": {"nodes": node.key, "wave": 0, "shard": 0, "backend": "rootfs"},
            "github": github_context("push", run_id=7),
        },
        uses=lambda _action, _with, _wd: None,
    )
    assert result.status == "success", [
        (s.name, s.stdout[-2000:], s.stderr[-2000:]) for s in result.steps
    ]
    staging = repo / "_refinery" / "staging"
    record = json.loads((staging / "records/refinery-fixture-cext/0.1.0/3.11.json").read_text())
    assert record["status"] == "built"
    assert record["attempts"][-1]["backend"] == "rootfs"
    assert record["wheel"]["filename"].endswith("_s390x.whl")
    assert (staging / "wheels" / record["wheel"]["sha256"] / record["wheel"]["filename"]).is_file()
    # the build output was fenced off from workflow commands
    build_out = result.step("Build").stdout + result.step("Build").stderr
    assert "::stop-commands::" in build_out


def test_publish_job_publishes_indexes_and_builds_the_site(
    repo: Path, host_env: dict[str, str], tmp_path: Path
) -> None:
    from fixtures.pyindex import Dist, make_wheel

    from refinery.core.models import BuildRecord
    from refinery.store import Store

    staging = repo / "_refinery" / "staging"
    wheel_name, data, _ = make_wheel(Dist("cybuild", "1.0"), "cp311-cp311-manylinux_2_17_s390x")
    wheel = tmp_path / wheel_name
    wheel.write_bytes(data)
    stage = Store.open(str(staging))
    ref = stage.put_wheel(wheel)
    stage.update_record(
        "cybuild",
        "1.0",
        "3.11",
        lambda _r: BuildRecord("cybuild", "1.0", "3.11", NodeStatus.BUILT, wheel=ref),
    )
    store = tmp_path / "store"
    (repo / "docs").mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "mkdocs.yml", repo / "mkdocs.yml")
    for src in (Path(__file__).resolve().parents[2] / "docs").iterdir():
        if src.name != "status":
            (shutil.copytree if src.is_dir() else shutil.copy)(src, repo / "docs" / src.name)
    context = {
        "vars": {
            "REFINERY_STORE": str(store),
            "REFINERY_INDEX_URL": "https://wheels.example.org/simple/",
        },
        "inputs": {"plan": "", "wave": 0, "nodes": "", "advance": False},
        "github": github_context("push"),
    }
    result = run_job(
        "publish.yml",
        "publish",
        workdir=repo,
        host_env=host_env,
        context=context,
        uses=no_sigstore,
    )
    assert result.status == "success", [(s.name, s.stderr[-3000:]) for s in result.steps]
    assert "Re-dispatch or next wave" not in result.ran()  # the run only planned
    assert "PEP 740 provenance beside the wheels" not in result.ran()  # no bundle to store
    assert Store.open(str(store)).get_record("cybuild", "1.0", "3.11") is not None
    derived = run_job(
        "publish.yml",
        "derive",
        workdir=repo,
        host_env=host_env,
        context=context,
        uses=lambda *_: None,
        timeout=600,
    )
    assert derived.status == "success", [(s.name, s.stderr[-3000:]) for s in derived.steps]
    assert (repo / "_refinery" / "index" / "simple" / "cybuild" / "index.html").exists()
    assert (repo / "_refinery" / "site" / "index.html").exists()
    assert "built" in derived.summary
