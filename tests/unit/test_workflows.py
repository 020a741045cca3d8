"""The workflows under .github/workflows: lint, policy, and the matrix they are fed.

Their jobs, run for real, are in ``tests/integration/test_workflows_run.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fixtures.actions import WORKFLOWS, evaluate, interpolate, load, read_outputs

from refinery.core.models import NodeStatus, Plan, PlanNode
from refinery.plan import build_matrix

NAMES = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
PIN = re.compile(r"^\s*(?:-\s+)?uses:\s*([^@\s]+)@(\S+)(.*)$")


def test_the_workflows_exist() -> None:
    expected = {
        "plan.yml",
        "plan-comment.yml",
        "main.yml",
        "build.yml",
        "publish.yml",
        "reconcile.yml",
        "ci.yml",
    }
    assert expected <= set(NAMES)


# --- lint -----------------------------------------------------------------------------
def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def test_actionlint_passes() -> None:
    proc = subprocess.run(
        [_tool("actionlint"), *(str(WORKFLOWS / n) for n in NAMES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_github_workflow_schema_passes() -> None:
    proc = subprocess.run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *(str(WORKFLOWS / n) for n in NAMES),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- policy ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_actions_pinned_by_full_sha_with_version_comment(name: str) -> None:
    for line in (WORKFLOWS / name).read_text().splitlines():
        m = PIN.match(line)
        if not m or m.group(1).startswith("./"):
            continue
        assert re.fullmatch(r"[0-9a-f]{40}", m.group(2)), line
        assert re.search(r"#\s*v\d+\.\d+\.\d+\b", m.group(3)), line


@pytest.mark.parametrize("name", NAMES)
def test_least_privilege_and_concurrency(name: str) -> None:
    doc = load(name)
    assert doc["permissions"] == {}, "top-level permissions must be {}"
    has_group = "concurrency" in doc
    for job_id, job in doc["jobs"].items():
        assert "permissions" in job, f"{job_id}: grant permissions per job"
        has_group = has_group or "concurrency" in job
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, job_id
    assert has_group, f"{name}: no concurrency group"


@pytest.mark.parametrize("name", NAMES)
def test_expressions_reach_scripts_only_through_env(name: str) -> None:
    for job in load(name)["jobs"].values():
        for step in job.get("steps", []):
            assert "${{" not in step.get("run", ""), step.get("name")


def test_only_trusted_jobs_get_store_credentials() -> None:
    """Store credentials: publish (and reconcile), our code only; build jobs get none."""
    for name in NAMES:
        for job_id, job in load(name)["jobs"].items():
            aws = [
                s
                for s in job.get("steps", [])
                if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials")
            ]
            if not aws:
                continue
            assert job["permissions"].get("id-token") == "write"
            if (name, job_id) == ("main.yml", "plan"):  # optional read-only role
                assert all("AWS_PLAN_ROLE_ARN" in str(s.get("if")) for s in aws)
            else:
                assert (name, job_id) in {
                    ("publish.yml", "publish"),
                    ("reconcile.yml", "reconcile"),
                }
    build = load("build.yml")["jobs"]["build"]
    assert build["permissions"] == {"contents": "read"}
    assert "secrets" not in json.dumps(build)
    publish = load("publish.yml")["jobs"]["publish"]
    assert publish["concurrency"] == {"group": "refinery-publish", "cancel-in-progress": False}
    deploy = load("publish.yml")["jobs"]["deploy"]
    assert any("actions/deploy-pages@" in s.get("uses", "") for s in deploy["steps"])


def test_qemu_binfmt_image_is_pinned() -> None:
    steps = load("build.yml")["jobs"]["build"]["steps"]
    (qemu,) = [s for s in steps if "docker/setup-qemu-action@" in s.get("uses", "")]
    image = qemu["with"]["image"]
    assert re.search(r":qemu-v\d+\.\d+\.\d+", image) and not image.endswith(":latest")
    assert "container" in qemu["if"]


def test_plan_on_pull_request_is_read_only() -> None:
    doc = load("plan.yml")
    assert set(doc["on"]) == {"pull_request"}
    assert doc["jobs"]["plan"]["permissions"] == {"contents": "read"}
    comment = load("plan-comment.yml")
    assert set(comment["on"]) == {"workflow_run"}
    steps = comment["jobs"]["comment"]["steps"]
    checkout = steps[0]
    assert "ref" not in checkout["with"], "never check out the fork's code with a write token"


# --- matrix: the workflow side of sharding -------------------------------------------
def _wave_jobs(doc: dict[str, Any]) -> list[str]:
    return sorted((j for j in doc["jobs"] if j.startswith("wave-")), key=lambda j: int(j[5:]))


def test_600_nodes_reach_wave_jobs_under_256_each_exactly_once_in_order(tmp_path: Path) -> None:
    from refinery.cli.plan import _write_github_output

    sizes = [450, 100, 50]
    waves = [[f"p{w}-{i}==1.0@3.11" for i in range(n)] for w, n in enumerate(sizes)]
    nodes = tuple(
        PlanNode(k.split("==")[0], "1.0", "3.11", NodeStatus.PENDING, "", True, wave=w)
        for w, keys in enumerate(waves)
        for k in keys
    )
    plan = Plan(
        "p600",
        ("requirements/big.txt",),
        (),
        nodes,
        tuple(map(tuple, waves)),
        {"include": [s.to_json() for s in build_matrix(waves)]},
    )
    out = tmp_path / "github_output"
    _write_github_output(plan, {"GITHUB_OUTPUT": str(out)})
    step_outputs = read_outputs(out)
    doc = load("main.yml")
    plan_job = doc["jobs"]["plan"]
    ctx: dict[str, Any] = {
        "steps": {"plan": {"outputs": step_outputs}, "gate": {"outputs": {"build": "true"}}}
    }
    job_outputs = {k: interpolate(v, ctx) for k, v in plan_job["outputs"].items()}
    needs = {"plan": {"outputs": job_outputs, "result": "success"}}
    seen: list[str] = []
    ran: list[int] = []
    for job_id in _wave_jobs(doc):
        job = doc["jobs"][job_id]
        wave = int(job_id[5:])
        if wave > 0:  # dependency order: each wave waits for the one before
            assert f"wave-{wave - 1}" in job["needs"]
        if not evaluate(job["if"][3:-2], {"needs": needs}):
            continue
        ran.append(wave)
        matrix = interpolate(job["strategy"]["matrix"], {"needs": needs})
        assert 0 < len(matrix["include"]) <= 256
        assert job["with"]["wave"] == wave
        for entry in matrix["include"]:
            assert entry["wave"] == wave
            nodes_arg = interpolate(job["with"]["nodes"], {"matrix": entry})
            seen += nodes_arg.split(" ")
    assert ran == [0, 1, 2]  # empty waves skipped by `if:`
    assert seen == [k for w in waves for k in w]  # every node once, in wave order
    assert len(set(seen)) == 600
    assert int(job_outputs["waves"]) <= len(_wave_jobs(doc))
    assert "matrix_wave_0" in plan_job["outputs"]
    assert all(f"matrix_wave_{i}" in plan_job["outputs"] for i in range(len(_wave_jobs(doc))))
    assert plan_job["env"]["MAX_WAVES"] == str(len(_wave_jobs(doc)))
