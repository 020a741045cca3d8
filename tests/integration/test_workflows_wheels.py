"""wheels.yml and wheels-comment.yml, run as GitHub runs them (fixtures.actions.GitHubSim):
a pull request adding a wheel to wheels/extra.toml is checked without credentials and its
verdict posted as ONE comment by the workflow_run workflow (through a fake API); the push
to main ingests it into the store and publish.yml derives the index. The wheel is served
on 127.0.0.1 (plain http allowed for loopback by REFINERY_WHEELS_HTTP_LOOPBACK)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from fixtures.actions import REPOSITORY, GitHubSim, git, github_context
from fixtures.pyindex import IndexServer
from fixtures.wheels import good_wheel

from refinery.store import Store

ROOT = Path(__file__).resolve().parents[2]


class FakeAPI:
    """The PR comment endpoints; records every comment body."""

    def __init__(self, httpserver: Any, head: dict[str, str]) -> None:
        self.bodies: list[str] = []
        self.head = head
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self._handle)
        self.url = httpserver.url_for("/api/v3")

    def _handle(self, request: Any) -> Any:
        from werkzeug import Response

        path = request.path.removeprefix("/api/v3")
        r = f"/repos/{REPOSITORY}"
        doc: Any = {"message": "no"}
        status = 404
        if path == r:
            status, doc = 200, {"full_name": REPOSITORY, "url": self.url + r}
        elif re.fullmatch(rf"{r}/pulls/\d+", path):
            status, doc = 200, {"number": 7, "head": {"sha": self.head["sha"]}}
        elif re.fullmatch(rf"{r}/issues/\d+", path):
            status, doc = 200, {"number": 7, "url": self.url + path}
        elif path.endswith("/comments") and request.method == "GET":
            status, doc = 200, []
        elif path.endswith("/comments") and request.method == "POST":
            self.bodies.append(json.loads(request.get_data())["body"])
            status, doc = 201, {"id": 1, "body": self.bodies[-1], "html_url": "https://x/c/1"}
        return Response(json.dumps(doc), status, content_type="application/json")


def test_wheel_upload_by_pull_request(tmp_path: Path, httpserver: Any) -> None:
    served = tmp_path / "served"
    wheel = good_wheel(served / "files", "upl", "1.0", "cp311-cp311-manylinux_2_28_s390x")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    repo = tmp_path / "origin"
    repo.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", repo / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", repo / "docs", ignore=shutil.ignore_patterns("status"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    head = {"sha": ""}
    api = FakeAPI(httpserver, head)
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "REFINERY_"))}
    env.update(
        GITHUB_API_URL=api.url,
        REFINERY_GITHUB_RETRY="0",
        REFINERY_WHEELS_HTTP_LOOPBACK="1",
        REFINERY_CACHE=str(tmp_path / "cache"),
    )
    sim = GitHubSim(repo, tmp_path / "sim", host_env=env, vars_={"REFINERY_STORE": str(store)})
    with IndexServer(served) as server:
        base = server.url.removesuffix("simple/") + "files/"
        (repo / "wheels").mkdir()
        (repo / "wheels" / "extra.toml").write_text(
            f'[[wheel]]\nname = "upl"\nversion = "1.0"\n'
            f'url = "{base}{wheel.name}"\nsha256 = "{digest}"\n'
        )
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", "a wheel")
        sha = head["sha"] = git(repo, "rev-parse", "HEAD")

        # --- the pull request: checked, nothing stored, the verdict handed over ----------
        pr = {"number": 7, "head": {"sha": sha}, "base": {"sha": sha}}
        checked = sim.run(
            "wheels.yml", github_context("pull_request", sha=sha, run_id=500, pull_request=pr), {}
        )
        assert not checked.failures(), checked.failures()
        assert [k for k, _ in checked.ran] == ["wheels.yml:check"]
        assert not store.exists(), "the PR job stores nothing"
        verdict = json.loads((checked.artifacts / "wheels-comment" / "verdict.json").read_text())
        assert verdict["ok"] is True

        run = {
            "id": 500,
            "event": "pull_request",
            "conclusion": "success",
            "head_sha": sha,
            "html_url": f"https://github.com/{REPOSITORY}/actions/runs/500",
        }
        commented = sim.run(
            "wheels-comment.yml",
            github_context("workflow_run", sha=sha, run_id=501, workflow_run=run),
            {},
        )
        assert not commented.failures(), commented.failures()
        (body,) = api.bodies
        assert "all accepted" in body and wheel.name.replace("_", "\\_") in body

        # --- the merge: ingested, then the index derived ----------------------------------
        pushed = sim.run("wheels.yml", github_context("push", sha=sha, run_id=502), {})
        assert not pushed.failures(), pushed.failures()
    ran = [k for k, _ in pushed.ran]
    assert ran[0] == "wheels.yml:ingest" and "publish.yml:derive" in ran
    record = Store.open(str(store)).get_record("upl", "1.0", "3.11")
    assert record is not None and record.source == "ingested"
    assert record.wheel is not None and record.wheel.sha256 == digest
    derive = next((tmp_path / "sim").glob("run-3/jobs/publish.yml-derive-*"))
    assert (derive / "_refinery" / "index" / "simple" / "upl" / "index.html").is_file()
