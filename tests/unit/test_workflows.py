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
from fixtures.actions import (
    WORKFLOWS,
    condition,
    github_context,
    interpolate,
    load,
    read_outputs,
)
from fixtures.need import unavailable

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
        "wheels.yml",
        "wheels-comment.yml",
    }
    assert expected <= set(NAMES)


# --- lint -----------------------------------------------------------------------------
def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed (scripts/setup installs it)")
    return found


def test_actionlint_passes_with_shellcheck_as_on_githubs_image() -> None:
    """ubuntu-24.04 ships shellcheck, and actionlint then lints every run: script with it;
    without shellcheck here, SC2086 and friends would pass locally and fail on GitHub."""
    _tool("shellcheck")
    proc = subprocess.run(
        [_tool("actionlint"), *(str(WORKFLOWS / n) for n in NAMES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_passes_offline() -> None:
    proc = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", str(WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_ignores_carry_a_reason() -> None:
    for name in NAMES:
        for line in (WORKFLOWS / name).read_text().splitlines():
            m = re.search(r"zizmor: ignore\[[a-z-]+\](.*)$", line)
            if m:
                assert len(m.group(1).strip()) > 20, f"{name}: an ignore without a reason: {line}"


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


def _aws_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for s in job.get("steps", [])
        if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials")
    ]


def test_only_trusted_jobs_get_store_credentials() -> None:
    """Store credentials: jobs that run only our code. Read-only (optional) to prepare
    what build jobs read; write to publish, derive the index/site, and reconcile."""
    for name in NAMES:
        for job_id, job in load(name)["jobs"].items():
            aws = _aws_steps(job)
            if not aws:
                continue
            assert job["permissions"].get("id-token") == "write"
            if (name, job_id) == ("main.yml", "prepare"):  # optional read-only role
                assert all("AWS_PLAN_ROLE_ARN" in str(s.get("if")) for s in aws)
            else:
                assert (name, job_id) in {
                    ("publish.yml", "publish"),
                    ("publish.yml", "learn"),
                    ("publish.yml", "derive"),
                    ("reconcile.yml", "reconcile"),
                    ("wheels.yml", "ingest"),  # downloads and checks wheels: runs no package code
                }


@pytest.mark.parametrize(("name", "job_id"), [("main.yml", "plan"), ("build.yml", "build")])
def test_jobs_that_run_package_code_hold_no_credentials(name: str, job_id: str) -> None:
    """Planning may run third-party build hooks (uv builds sdists for metadata), builds
    run setup.py: neither gets an OIDC token, a secret or a write permission."""
    job = load(name)["jobs"][job_id]
    assert job["permissions"] == {"contents": "read"}
    assert not _aws_steps(job)
    assert "secrets" not in json.dumps(job)


def test_a_publish_is_never_dropped_by_a_concurrency_group() -> None:
    """GitHub keeps one pending run per group and cancels the older pending one: the
    publish job has no group (records merge by compare-and-swap); the derived index and
    site have one without cancel-in-progress, and any later derive covers an earlier."""
    doc = load("publish.yml")
    assert "concurrency" not in doc and "concurrency" not in doc["jobs"]["publish"]
    assert doc["jobs"]["derive"]["concurrency"]["cancel-in-progress"] is False
    deploy = doc["jobs"]["deploy"]
    assert any("actions/deploy-pages@" in s.get("uses", "") for s in deploy["steps"])


def test_download_artifact_token_only_for_another_runs_artifacts() -> None:
    """With github-token, download-artifact takes the REST path: at most 1,000 artifacts
    listed and one API call each. Only a workflow_run workflow (another run) needs it."""
    for name in NAMES:
        doc = load(name)
        for job in doc["jobs"].values():
            for step in job.get("steps", []):
                if not str(step.get("uses", "")).startswith("actions/download-artifact@"):
                    continue
                given = step.get("with") or {}
                assert ("github-token" in given) == ("workflow_run" in doc["on"]), name
                assert ("run-id" in given) == ("workflow_run" in doc["on"]), name


def test_qemu_binfmt_image_is_pinned() -> None:
    steps = load("build.yml")["jobs"]["build"]["steps"]
    (qemu,) = [s for s in steps if "docker/setup-qemu-action@" in s.get("uses", "")]
    image = qemu["with"]["image"]
    assert re.search(r":qemu-v\d+\.\d+\.\d+", image) and not image.endswith(":latest")
    assert "container" in qemu["if"]


@pytest.mark.parametrize(
    ("inputs", "setup_python", "runner"),
    [
        ({"backend": "native", "runner": "s390x-large"}, False, "s390x-large"),
        ({"backend": "cross", "runner": "ubuntu-24.04"}, True, "ubuntu-24.04"),
        ({}, True, "ubuntu-24.04"),
    ],
)
def test_native_backend_uses_the_runners_python_not_setup_python(
    inputs: dict[str, Any], setup_python: bool, runner: str
) -> None:
    """actions/setup-python has no s390x builds: on an s390x runner it cannot start."""
    job = load("build.yml")["jobs"]["build"]
    declared = load("build.yml")["on"]["workflow_call"]["inputs"]
    given = {k: inputs.get(k, v.get("default")) for k, v in declared.items()}
    ctx: dict[str, Any] = {"inputs": given, "vars": {}}
    ctx["env"] = {k: interpolate(v, ctx) for k, v in job["env"].items()}
    (step,) = [s for s in job["steps"] if "actions/setup-python@" in s.get("uses", "")]
    assert condition(step.get("if"), ctx, "success") is setup_python
    assert interpolate(job["runs-on"], ctx) == runner
    install = next(s for s in job["steps"] if s.get("name") == "Install refinery")
    assert install["run"].lstrip().startswith("python3 -m venv")  # any runner's CPython


def test_build_job_stops_in_time_to_upload() -> None:
    """timeout-minutes: 360 equals the hosted limit: a job killed there uploads nothing.
    The Build step's own deadline leaves time for the always() steps."""
    job = load("build.yml")["jobs"]["build"]
    assert job["timeout-minutes"] < 360
    build = next(s for s in job["steps"] if s.get("name") == "Build")
    assert build["timeout-minutes"] + 15 <= job["timeout-minutes"]
    upload = next(s for s in job["steps"] if "actions/upload-artifact@" in s.get("uses", ""))
    assert upload["if"] == "always()"


def test_build_job_reads_earlier_waves_read_only_and_uploads_only_its_own() -> None:
    """Every shard used to download all earlier waves into its staging folder and upload
    them again: artifacts grew quadratically. The base is a separate folder beneath."""
    job = load("build.yml")["jobs"]["build"]
    paths = [
        s["with"]["path"] for s in job["steps"] if "actions/download-artifact@" in s.get("uses", "")
    ]
    assert "_refinery/staging" not in paths and "_refinery/base" in paths
    assert job["env"]["REFINERY_STORE"] == "_refinery/staging"
    build = next(s for s in job["steps"] if s.get("name") == "Build")
    assert 'REFINERY_STORE_BASE="$BASE"' in build["run"]
    upload = next(s for s in job["steps"] if "actions/upload-artifact@" in s.get("uses", ""))
    assert upload["with"]["path"] == "_refinery/staging"


def test_scheduled_reconcile_dispatches_to_the_default_branch() -> None:
    """A schedule payload carries no repository: github.event.repository.default_branch
    is empty there; the run's ref is the default branch."""
    job = load("reconcile.yml")["jobs"]["reconcile"]
    step = next(s for s in job["steps"] if s.get("name") == "Reconcile")
    for event in ("schedule", "workflow_dispatch"):
        ctx = {"github": github_context(event), "inputs": {}}
        assert interpolate(step["env"]["REF"], ctx) == "main", event
    assert "repository" not in github_context("schedule")["event"]


def test_plan_on_pull_request_is_read_only() -> None:
    doc = load("plan.yml")
    assert set(doc["on"]) == {"pull_request"}
    assert doc["jobs"]["plan"]["permissions"] == {"contents": "read"}
    comment = load("plan-comment.yml")
    assert set(comment["on"]) == {"workflow_run"}
    steps = comment["jobs"]["comment"]["steps"]
    checkout = steps[0]
    assert "ref" not in checkout["with"], "never check out the fork's code with a write token"


# --- waves: one per run, any depth ------------------------------------------------------
def test_one_wave_job_of_any_depth() -> None:
    """No fixed ceiling of wave jobs: main.yml builds one wave per run and publish.yml's
    `refinery advance` dispatches the next (GitHub: a workflow token may trigger
    workflow_dispatch; a run cannot add jobs)."""
    doc = load("main.yml")
    assert not [j for j in doc["jobs"] if re.fullmatch(r"wave-\d+", j)]
    assert {"plan", "wave", "prepare", "publish"} <= set(doc["jobs"])
    assert {"plan", "wave", "nodes"} <= set(doc["on"]["workflow_dispatch"]["inputs"])
    assert "max_waves" not in json.dumps(doc).lower()
    publish = load("publish.yml")["jobs"]["publish"]
    advance = next(s for s in publish["steps"] if s.get("name") == "Re-dispatch or next wave")
    assert "refinery advance" in advance["run"]
    assert publish["permissions"]["actions"] == "write"


def _plan_of(sizes: list[int]) -> Plan:
    waves = [[f"p{w}-{i}==1.0@3.11" for i in range(n)] for w, n in enumerate(sizes)]
    nodes = tuple(
        PlanNode(k.split("==")[0], "1.0", "3.11", NodeStatus.PENDING, "", True, wave=w)
        for w, keys in enumerate(waves)
        for k in keys
    )
    return Plan(
        "p600",
        ("requirements/big.txt",),
        (),
        nodes,
        tuple(map(tuple, waves)),
        {"include": [s.to_json() for s in build_matrix(waves)]},
    )


def _wave_job_shards(needs: dict[str, Any], inputs: dict[str, Any]) -> list[list[str]] | None:
    job = load("main.yml")["jobs"]["wave"]
    if not condition(job["if"], {"needs": needs, "inputs": inputs}, "success"):
        return None
    matrix = interpolate(job["strategy"]["matrix"], {"needs": needs, "inputs": inputs})
    assert 0 < len(matrix["include"]) <= 256
    return [
        interpolate(job["with"]["nodes"], {"matrix": entry}).split(" ")
        for entry in matrix["include"]
    ]


def test_600_nodes_in_ten_waves_reach_the_wave_job_under_256_each_exactly_once(
    tmp_path: Path,
) -> None:
    """Wave 0 from the plan job's outputs, each later wave from the prepare job of the
    run dispatched for it (the stored plan's matrix for that wave)."""
    from refinery.cli.gitops import _wave_matrix
    from refinery.cli.plan import _write_github_output

    plan = _plan_of([300, 100, 50, 50, 40, 20, 20, 10, 5, 5])
    out = tmp_path / "github_output"
    _write_github_output(plan, {"GITHUB_OUTPUT": str(out)})
    ctx: dict[str, Any] = {
        "steps": {"plan": {"outputs": read_outputs(out)}, "gate": {"outputs": {"build": "true"}}}
    }
    plan_outputs = {
        k: interpolate(v, ctx) for k, v in load("main.yml")["jobs"]["plan"]["outputs"].items()
    }
    seen: list[str] = []
    needs = {
        "prepare": {"result": "success", "outputs": {"since": ""}},
        "plan": {"result": "success", "outputs": plan_outputs},
    }
    shards = _wave_job_shards(needs, {"plan": "", "wave": 0})
    assert shards is not None
    seen += [k for shard in shards for k in shard]
    for wave in range(1, len(plan.waves)):
        matrix = json.dumps(_wave_matrix(plan, wave, ()))
        needs = {
            "prepare": {"result": "success", "outputs": {"matrix": matrix}},
            "plan": {"result": "skipped", "outputs": {}},
        }
        shards = _wave_job_shards(needs, {"plan": plan.plan_id, "wave": wave})
        assert shards is not None, wave
        seen += [k for shard in shards for k in shard]
    assert seen == [k for w in plan.waves for k in w]  # every node once, in wave order
    assert len(set(seen)) == 600


def test_a_plan_not_to_be_built_reaches_no_wave() -> None:
    needs = {
        "prepare": {"result": "success", "outputs": {}},
        "plan": {"result": "success", "outputs": {"build": "false", "matrix": ""}},
    }
    assert _wave_job_shards(needs, {"plan": "", "wave": 0}) is None


@pytest.mark.parametrize("name", NAMES)
def test_artifact_paths_are_not_hidden(name: str) -> None:
    """upload-artifact (v4.4+) leaves out hidden files and folders by default, a path
    inside a dot-folder included (elastic/cloudbeat#5286): `.refinery/staging` would
    upload nothing at all."""
    for job in load(name)["jobs"].values():
        for step in job.get("steps", []):
            uses = str(step.get("uses", ""))
            if uses.startswith(("actions/upload-artifact@", "actions/upload-pages-artifact@")):
                path = str(step["with"]["path"])
                assert not any(p.startswith(".") for p in path.split("/")), (name, path)
                assert not step["with"].get("include-hidden-files"), (name, path)
