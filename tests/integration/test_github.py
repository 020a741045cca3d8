"""refinery.gitops.github against a local recording HTTP server (pytest-httpserver) that plays
GitHub under an Enterprise-style ``/api/v3`` prefix; PyGithub retries and throttling off."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from refinery.core.models import NodeStatus, Plan, PlanNode, Target
from refinery.gitops.github import COMMENT_MARKER, GitHub, GitHubError
from refinery.plan.report import plan_markdown

REPO = "octo/farm"


def plan_comment(plan: Plan, **kw: Any) -> str:
    """The comment body as ``refinery comment`` renders it."""
    return plan_markdown(plan, marker=COMMENT_MARKER, **kw)


HEAD = "a" * 40


@dataclass
class FakeGitHub:
    """Just enough of the REST API; records (method, path, body) of every request."""

    base: str
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[tuple[str, str], tuple[int, dict[str, Any], dict[str, str]]] = field(
        default_factory=dict
    )
    query: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def writes(self) -> list[tuple[str, str, Any]]:
        return [c for c in self.calls if c[0] != "GET"]

    def __call__(self, request: Request) -> Response:
        path = request.path.removeprefix("/api/v3")
        body = json.loads(request.get_data() or b"null")
        self.query = dict(request.args)
        self.calls.append((request.method, path, body))
        if (request.method, path) in self.fail:
            status, doc, headers = self.fail[(request.method, path)]
            return Response(json.dumps(doc), status, headers, content_type="application/json")
        status, doc = self.route(request.method, path, body)
        return Response(
            "" if doc is None else json.dumps(doc), status, content_type="application/json"
        )

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        r = f"/repos/{REPO}"
        if method == "GET" and path == r:
            return 200, {"full_name": REPO, "url": self.url(r), "default_branch": "main"}
        if method == "GET" and (m := re.fullmatch(rf"{r}/actions/workflows/([^/]+)", path)):
            return 200, {
                "id": 42,
                "path": f".github/workflows/{m.group(1)}",
                "url": self.url(f"{r}/actions/workflows/42"),
            }
        if method == "POST" and re.fullmatch(rf"{r}/actions/workflows/[^/]+/dispatches", path):
            return 204, None
        if method == "GET" and (m := re.fullmatch(rf"{r}/pulls/(\d+)", path)):
            return 200, {"number": int(m.group(1)), "head": {"sha": HEAD}, "url": self.url(path)}
        if method == "GET" and (m := re.fullmatch(rf"{r}/issues/(\d+)", path)):
            return 200, {"number": int(m.group(1)), "url": self.url(path)}
        if method == "GET" and re.fullmatch(rf"{r}/issues/\d+/comments", path):
            return 200, self.comments
        if method == "POST" and re.fullmatch(rf"{r}/issues/\d+/comments", path):
            n = len(self.comments) + 1
            comment = {
                "id": n,
                "body": body["body"],
                "user": {"login": "github-actions[bot]"},
                "url": self.url(f"{r}/issues/comments/{n}"),
                "html_url": f"https://example.org/c/{n}",
            }
            self.comments.append(comment)
            return 201, comment
        if method == "PATCH" and (m := re.fullmatch(rf"{r}/issues/comments/(\d+)", path)):
            comment = self.comments[int(m.group(1)) - 1]
            comment["body"] = body["body"]
            return 200, comment
        if method == "POST" and path == f"{r}/check-runs":
            return 201, {"id": 7, "html_url": "https://example.org/checks/7", **body}
        if method == "GET" and path == f"{r}/branches/main":
            return 200, {"name": "main", "commit": {"sha": "b" * 40}}
        if method == "POST" and path == f"{r}/git/refs":
            return 201, {"ref": body["ref"], "object": {"sha": body["sha"]}}
        if method == "GET" and path.startswith(f"{r}/contents/"):
            return 404, {"message": "Not Found"}
        if method == "PUT" and path.startswith(f"{r}/contents/"):
            return 201, {"content": {"path": path, "sha": "c" * 40}, "commit": {"sha": "d" * 40}}
        if method == "POST" and path == f"{r}/pulls":
            return 201, {"number": 9, "html_url": "https://example.org/pull/9", **body}
        if method == "GET" and (
            m := re.fullmatch(rf"{r}/actions/runs/(\d+)/attempts/(\d+)/jobs", path)
        ):
            run, attempt = m.groups()
            jobs = [
                {
                    "id": 900 + i,
                    "run_id": int(run),
                    "run_attempt": int(attempt),
                    "name": f"wave / build w0 s{i}",
                    "html_url": f"https://github.com/{REPO}/actions/runs/{run}/job/{900 + i}",
                }
                for i in range(150)  # two pages of 100
            ]
            page = int(self.query.get("page", "1"))
            return 200, {"total_count": len(jobs), "jobs": jobs[(page - 1) * 100 : page * 100]}
        return 404, {"message": f"fake GitHub has no {method} {path}"}


@pytest.fixture
def fake(httpserver: Any) -> FakeGitHub:
    gh = FakeGitHub(httpserver.url_for("/api/v3"))
    httpserver.expect_request(re.compile(".*")).respond_with_handler(gh)
    return gh


@pytest.fixture
def client(fake: FakeGitHub) -> Iterator[GitHub]:
    with GitHub(REPO, "t0ken", base_url=fake.base, retry=False, throttle=False) as gh:
        yield gh


def _plan() -> Plan:
    nodes = (
        PlanNode(
            "numpy", "2.1.0", "3.11", NodeStatus.PENDING, "no s390x wheel; sdist", True, wave=0
        ),
        PlanNode("six", "1.16.0", "3.11", NodeStatus.REUSED, "wheel on the index", False),
        PlanNode("lxml", "5.0", "3.11", NodeStatus.SKIPPED_KNOWN_FAILURE, "failed | before", True),
    )
    return Plan(
        "p1",
        ("requirements/x.txt",),
        (Target(),),
        nodes,
        (("numpy==2.1.0@3.11",),),
        {"include": [{"shard": 0, "wave": 0, "nodes": ["numpy==2.1.0@3.11"]}]},
    )


def test_dispatch_posts_workflow_dispatch(fake: FakeGitHub, client: GitHub) -> None:
    client.dispatch(
        "build.yml",
        "main",
        {"nodes": "numpy==2.1.0@3.11", "attempt": "2", "fixes": "zlib", "plan": "p1"},
    )
    (write,) = fake.writes()
    method, path, body = write
    assert method == "POST" and path.endswith("/dispatches")
    assert body == {
        "ref": "main",
        "inputs": {"nodes": "numpy==2.1.0@3.11", "attempt": "2", "fixes": "zlib", "plan": "p1"},
    }


def test_comment_upsert_second_run_edits(fake: FakeGitHub, client: GitHub) -> None:
    body = plan_comment(_plan())
    first = client.upsert_comment(5, body, author="github-actions[bot]", expect_head_sha=HEAD)
    assert first.action == "created"
    changed = body.replace("numpy", "numpy (again)")
    second = client.upsert_comment(5, changed, author="github-actions[bot]")
    assert second.action == "updated" and second.comment_id == first.comment_id
    third = client.upsert_comment(5, changed, author="github-actions[bot]")
    assert third.action == "unchanged"
    writes = fake.writes()
    assert [(m, p.rsplit("/", 2)[-2:]) for m, p, _ in writes] == [
        ("POST", ["5", "comments"]),
        ("PATCH", ["comments", "1"]),
    ]
    assert len(fake.comments) == 1 and fake.comments[0]["body"].startswith(COMMENT_MARKER)


def test_comment_ignores_marked_comments_of_others(fake: FakeGitHub, client: GitHub) -> None:
    fake.comments.append(
        {
            "id": 1,
            "body": COMMENT_MARKER + " spoof",
            "user": {"login": "eve"},
            "url": fake.url("/x"),
            "html_url": "h",
        }
    )
    done = client.upsert_comment(5, "plan", author="github-actions[bot]")
    assert done.action == "created" and fake.comments[0]["body"].endswith("spoof")


def test_comment_refuses_another_head(client: GitHub) -> None:
    with pytest.raises(GitHubError, match="refusing to comment for another commit"):
        client.upsert_comment(5, "plan", expect_head_sha="f" * 40)


def test_check_run_carries_the_summary(fake: FakeGitHub, client: GitHub) -> None:
    url = client.check_run(HEAD, "3 nodes", plan_comment(_plan()), conclusion="neutral")
    assert url == "https://example.org/checks/7"
    ((method, path, body),) = fake.writes()
    assert (method, path) == ("POST", f"/repos/{REPO}/check-runs")
    assert body["head_sha"] == HEAD and body["status"] == "completed"
    assert body["conclusion"] == "neutral" and "numpy" in body["output"]["summary"]


def test_learned_hint_becomes_a_pull_request(fake: FakeGitHub, client: GitHub) -> None:
    url = client.propose_file(
        "hints/zlib.yaml",
        "id: zlib\n",
        branch="hints/learned-zlib",
        title="hint: zlib headers",
        body="learned from lxml==5.0",
    )
    assert url == "https://example.org/pull/9"
    writes = fake.writes()
    assert [(m, p) for m, p, _ in writes] == [
        ("POST", f"/repos/{REPO}/git/refs"),
        ("PUT", f"/repos/{REPO}/contents/hints/zlib.yaml"),
        ("POST", f"/repos/{REPO}/pulls"),
    ]
    assert writes[0][2] == {"ref": "refs/heads/hints/learned-zlib", "sha": "b" * 40}
    assert writes[1][2]["branch"] == "hints/learned-zlib"
    assert writes[2][2]["head"] == "hints/learned-zlib" and writes[2][2]["base"] == "main"


def test_422_is_one_line(fake: FakeGitHub, client: GitHub) -> None:
    path = f"/repos/{REPO}/actions/workflows/build.yml/dispatches"
    fake.fail[("POST", path)] = (
        422,
        {
            "message": 'Unexpected inputs provided: ["bogus"]',
            "errors": [{"resource": "Dispatch", "code": "invalid"}],
        },
        {},
    )
    with pytest.raises(GitHubError) as info:
        client.dispatch("build.yml", "main", {"bogus": "1"})
    message = str(info.value)
    assert "\n" not in message and "(422)" in message and "Unexpected inputs" in message


def test_rate_limit_is_one_line_with_reset(fake: FakeGitHub, client: GitHub) -> None:
    reset = int(time.time()) + 600
    fake.fail[("POST", f"/repos/{REPO}/check-runs")] = (
        403,
        {"message": "API rate limit exceeded for installation."},
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
    )
    with pytest.raises(GitHubError, match=r"rate limit exceeded .* resets at \d\d:\d\d:\d\d UTC"):
        client.check_run(HEAD, "t", "s")


def _cli(fake: FakeGitHub, *args: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(
        GITHUB_TOKEN="t0ken",
        GITHUB_API_URL=fake.base,
        GITHUB_REPOSITORY=REPO,
        REFINERY_GITHUB_RETRY="0",
        REFINERY_STORE=str(store),
    )
    return subprocess.run(
        [sys.executable, "-m", "refinery", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_dispatch_and_comment(fake: FakeGitHub, tmp_path: Path) -> None:
    proc = _cli(
        fake,
        "dispatch",
        "NumPy==2.1.0@3.11",
        "--fix",
        "zlib",
        "--plan",
        "p1",
        "--wave",
        "0",
        store=tmp_path / "s",
    )
    assert proc.returncode == 0, proc.stderr
    ((_, path, body),) = fake.writes()
    assert path.endswith("/actions/workflows/main.yml/dispatches")
    assert body["inputs"] == {
        "plan": "p1",
        "wave": "0",
        "nodes": "numpy==2.1.0@3.11",
        "fixes": "zlib",
        "backend": "",
    }
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(_plan().to_json()))
    for _ in range(2):
        proc = _cli(
            fake,
            "comment",
            str(plan_file),
            "--pr",
            "5",
            "--check",
            "--head-sha",
            HEAD,
            store=tmp_path / "s",
        )
        assert proc.returncode == 0, proc.stderr
    posts = [(m, p.split("/")[-1]) for m, p, _ in fake.writes()]
    # the second run finds its comment (same plan: nothing to edit) and adds none
    assert posts == [
        ("POST", "dispatches"),
        ("POST", "comments"),
        ("POST", "check-runs"),
        ("POST", "check-runs"),
    ]
    assert len(fake.comments) == 1


def test_cli_errors_are_one_line_without_traceback(fake: FakeGitHub, tmp_path: Path) -> None:
    fake.fail[("POST", f"/repos/{REPO}/actions/workflows/main.yml/dispatches")] = (
        422,
        {"message": "Workflow does not have 'workflow_dispatch' trigger"},
        {},
    )
    proc = _cli(
        fake, "dispatch", "six==1.16.0@3.11", "--plan", "p1", "--wave", "0", store=tmp_path / "s"
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("refinery: error: dispatch main.yml@main: GitHub refused")
    bad = _cli(fake, "dispatch", "not-a-key", "--plan", "p1", store=tmp_path / "s")
    assert bad.returncode == 2 and "not a node key" in bad.stderr


def test_comment_table_sections() -> None:
    body = plan_comment(_plan(), hints={"lxml==5.0@3.11": "libxml2-dev"})
    assert body.startswith(COMMENT_MARKER)
    assert "#### To build (1)" in body and "#### Known failing (1)" in body
    assert "#### Reused (PyPI has an s390x wheel) (1)" in body
    assert "failed \\| before" in body and "hint that would apply: `libxml2-dev`" in body


def test_job_url_by_name_through_the_pages(fake: FakeGitHub, client: GitHub) -> None:
    """Where job.check_run_id is missing (GitHub Enterprise Server), the job's page comes
    from the run attempt's jobs, matched by name (a reusable workflow's job is named
    ``<caller job> / <job name>``), through the pages."""
    assert client.job_url(77, 2, "wave / build w0 s120") == (
        f"https://github.com/{REPO}/actions/runs/77/job/1020"
    )
    assert client.job_url(77, 2, "build w0 s3") is None
    gets = [c for c in fake.calls if c[1].endswith("/attempts/2/jobs")]
    assert len(gets) == 4  # two pages per look-up


def test_cli_stamp_run_looks_the_job_up(fake: FakeGitHub, tmp_path: Path) -> None:
    from refinery.core.models import BuildRecord
    from refinery.store import Store

    store = Store.open(str(tmp_path / "staging"))
    store.update_record(
        "a", "1", "3.11", lambda _cur: BuildRecord("a", "1", "3.11", NodeStatus.BUILDING)
    )
    url = f"https://github.com/{REPO}/actions/runs/77/attempts/2"
    done = _cli(
        fake,
        "stamp-run",
        "--url",
        url,
        "--job",
        "wave / build w0 s5",
        "--lookup",
        store=tmp_path / "staging",
    )
    assert done.returncode == 0, done.stderr
    record = store.get_record("a", "1", "3.11")
    assert record is not None and record.run_url == url
    assert record.job_url == f"https://github.com/{REPO}/actions/runs/77/job/905"
