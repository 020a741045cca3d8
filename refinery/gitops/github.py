"""The GitHub API side of the GitOps loop (PyGithub).

* :meth:`GitHub.dispatch` — ``workflow_dispatch`` of ``main.yml``: the next wave of a
  stored plan, or exactly some of its nodes again, with fixes or another backend
  (with ``repository_dispatch`` the only events a workflow token may trigger);
* :meth:`GitHub.upsert_comment` — ONE plan comment per pull request, found again by a
  hidden marker and edited on later pushes;
* :meth:`GitHub.check_run` — a completed check run carrying the plan summary;
* :meth:`GitHub.propose_file` — a learned hint as a pull request (branch, commit, PR).

Every API failure becomes one :class:`GitHubError` line (rate limits with their reset
time, 422 with GitHub's own explanation); nothing here prints. The base URL is
configurable for GitHub Enterprise Server (``https://HOST/api/v3``).

The comment body is rendered elsewhere (``refinery.plan.report.plan_markdown``, called
by the CLI); this module only carries text and knows nothing of the other stages.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from refinery.core.errors import NetworkError, RefineryError
from refinery.core.models import NodeStatus, Plan

DEFAULT_API = "https://api.github.com"
COMMENT_MARKER = "<!-- wheel-refinery:plan -->"
CHECK_NAME = "refinery plan"
MAX_BODY = 65_000  # GitHub refuses comment bodies and check summaries over 65,536 chars


class GitHubError(RefineryError):
    """The GitHub API refused or failed; the message is one line."""


@dataclass(frozen=True, slots=True)
class CommentResult:
    action: str  # "created" | "updated" | "unchanged"
    comment_id: int
    url: str


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _reset_time(headers: Mapping[str, Any] | None) -> str:
    reset = (headers or {}).get("x-ratelimit-reset") or (headers or {}).get("X-RateLimit-Reset")
    if reset:
        with contextlib.suppress(ValueError, OverflowError, OSError):
            when = datetime.fromtimestamp(int(reset), UTC)
            return f"; resets at {when:%H:%M:%S} UTC"
    retry = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    return f"; retry after {retry} s" if retry else ""


def _explain(data: Any) -> str:
    """GitHub's error document as one line: message, then each error's details."""
    if not isinstance(data, Mapping):
        return _one_line(str(data or ""))
    parts = [str(data.get("message") or "")]
    for err in data.get("errors") or ():
        if isinstance(err, Mapping):
            detail = err.get("message") or " ".join(
                str(err[k]) for k in ("resource", "field", "code") if err.get(k)
            )
            parts.append(str(detail))
        else:
            parts.append(str(err))
    return _one_line(": ".join(p for p in parts if p))


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn PyGithub and transport exceptions into one-line :class:`GitHubError`."""
    import requests
    from github import GithubException, RateLimitExceededException

    try:
        yield
    except RateLimitExceededException as exc:
        raise GitHubError(
            f"{what}: GitHub rate limit exceeded ({_explain(exc.data)}){_reset_time(exc.headers)}"
        ) from None
    except GithubException as exc:
        status = exc.status
        detail = _explain(exc.data)
        if status == 422:
            raise GitHubError(f"{what}: GitHub refused the request (422): {detail}") from None
        if status == 401:
            raise GitHubError(f"{what}: bad or missing GitHub token (401): {detail}") from None
        if status == 403 and "rate limit" in detail.lower():
            raise GitHubError(
                f"{what}: GitHub rate limit exceeded ({detail}){_reset_time(exc.headers)}"
            ) from None
        if status == 403:
            raise GitHubError(
                f"{what}: forbidden (403): {detail} — does the token have the permission?"
            ) from None
        if status == 404:
            raise GitHubError(f"{what}: not found (404): {detail}") from None
        raise GitHubError(f"{what}: GitHub API error {status}: {detail}") from None
    except requests.exceptions.RequestException as exc:
        raise NetworkError(f"{what}: cannot reach GitHub: {_one_line(str(exc))}") from None


class GitHub:
    """One repository on github.com or a GitHub Enterprise Server.

    ``retry``/``throttle`` off is for tests against a local server: PyGithub then
    neither retries a status nor sleeps between requests; a connection dropped before the
    answer is tried again at once (twice at most), as a loaded test server drops one.
    """

    def __init__(
        self,
        repo: str,
        token: str | None,
        *,
        base_url: str | None = None,
        retry: bool = True,
        throttle: bool = True,
        timeout: int = 30,
    ) -> None:
        from github import Auth, Github

        if repo.count("/") != 1 or not all(repo.split("/")):
            raise GitHubError(f"repository must be OWNER/NAME, not {repo!r}")
        self.repo_name = repo
        self.base_url = (base_url or DEFAULT_API).rstrip("/")
        kwargs: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": timeout,
            "auth": Auth.Token(token) if token else None,
            "lazy": True,
        }
        if not retry:
            from urllib3.util.retry import Retry

            kwargs["retry"] = Retry(
                total=2,
                connect=2,
                read=2,
                status=0,
                other=0,
                backoff_factor=0,
                allowed_methods=None,
                raise_on_status=False,
            )
        if not throttle:
            kwargs["seconds_between_requests"] = 0
            kwargs["seconds_between_writes"] = 0
        self._gh = Github(**kwargs)
        self._repo: Any = None

    @property
    def repo(self) -> Any:
        if self._repo is None:
            with _translated(f"repository {self.repo_name}"):
                self._repo = self._gh.get_repo(self.repo_name)
        return self._repo

    def close(self) -> None:
        self._gh.close()

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- re-dispatch --------------------------------------------------------------
    def dispatch(self, workflow: str, ref: str, inputs: Mapping[str, str]) -> None:
        """``workflow_dispatch`` of ``workflow`` (file name or id) on ``ref``."""
        what = f"dispatch {workflow}@{ref}"
        with _translated(what):
            wf = self.repo.get_workflow(workflow)
            wf.create_dispatch(ref, dict(inputs), throw=True)

    # --- the job of a run -----------------------------------------------------------
    def job_url(self, run_id: int, attempt: int, name: str) -> str | None:
        """The ``html_url`` of the job called ``name`` in attempt ``attempt`` of run
        ``run_id`` (``GET /repos/{repo}/actions/runs/{run_id}/attempts/{attempt}/jobs``,
        100 a page); ``None`` when no job has that name. Needs ``actions: read``. Where
        the ``job.check_run_id`` context exists (github.com), the workflow uses it
        instead: no API call."""
        path = f"/repos/{self.repo_name}/actions/runs/{run_id}/attempts/{attempt}/jobs"
        with _translated(f"jobs of run {run_id} attempt {attempt}"):
            for page in range(1, 11):  # a run has at most 256 matrix jobs per job
                _headers, data = self._gh.requester.requestJsonAndCheck(
                    "GET", path, parameters={"per_page": 100, "page": page}
                )
                jobs = list((data or {}).get("jobs") or ())
                for job in jobs:
                    if job.get("name") == name and job.get("html_url"):
                        return str(job["html_url"])
                if len(jobs) < 100:
                    break
        return None

    # --- pull request comment -----------------------------------------------------
    def upsert_comment(
        self,
        pr: int,
        body: str,
        *,
        marker: str = COMMENT_MARKER,
        author: str | None = None,
        expect_head_sha: str | None = None,
    ) -> CommentResult:
        """Create the marked comment on ``pr``, or edit the one already there.

        ``expect_head_sha``: refuse unless the PR's head is that commit (the PR number
        came from an untrusted artifact; the SHA from the trusted ``workflow_run``).
        ``author``: only comments by this login count as ours.
        """
        if marker not in body:
            body = f"{marker}\n{body}"
        body = _clip(body)
        what = f"comment on pull request #{pr}"
        with _translated(what):
            if expect_head_sha is not None:
                pull = self.repo.get_pull(pr)
                if pull.head.sha != expect_head_sha:
                    raise GitHubError(
                        f"{what}: head is {pull.head.sha[:12]}, not {expect_head_sha[:12]}; "
                        "refusing to comment for another commit"
                    )
            issue = self.repo.get_issue(pr)
            for comment in issue.get_comments():
                if marker not in (comment.body or ""):
                    continue
                if author is not None and (comment.user is None or comment.user.login != author):
                    continue
                if comment.body == body:
                    return CommentResult("unchanged", comment.id, comment.html_url)
                comment.edit(body)
                return CommentResult("updated", comment.id, comment.html_url)
            created = issue.create_comment(body)
            return CommentResult("created", created.id, created.html_url)

    # --- check run ----------------------------------------------------------------
    def check_run(
        self,
        head_sha: str,
        title: str,
        summary: str,
        *,
        name: str = CHECK_NAME,
        conclusion: str = "success",
        details_url: str | None = None,
    ) -> str:
        """A completed check run on ``head_sha``; returns its URL."""
        output = {"title": title[:255], "summary": _clip(summary)}
        kwargs: dict[str, Any] = {
            "name": name,
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": conclusion,
            "completed_at": datetime.now(UTC),
            "output": output,
        }
        if details_url:
            kwargs["details_url"] = details_url
        with _translated(f"check run on {head_sha[:12]}"):
            run = self.repo.create_check_run(**kwargs)
            return str(run.html_url or run.url)

    # --- learned hints as pull requests -------------------------------------------
    def propose_file(
        self,
        path: str,
        content: str,
        *,
        branch: str,
        title: str,
        body: str,
        message: str | None = None,
        base: str | None = None,
    ) -> str:
        """Branch off ``base``, commit ``content`` to ``path``, open a PR; its URL."""
        from github import GithubException

        what = f"propose {path} on branch {branch}"
        with _translated(what):
            base = base or self.repo.default_branch
            head = self.repo.get_branch(base).commit.sha
            self.repo.create_git_ref(f"refs/heads/{branch}", head)
            message = message or title
            try:
                existing = self.repo.get_contents(path, ref=branch)
            except GithubException as exc:
                if exc.status != 404:
                    raise
                self.repo.create_file(path, message, content, branch=branch)
            else:
                if isinstance(existing, list):
                    raise GitHubError(f"{what}: {path} is a directory")
                self.repo.update_file(path, message, content, existing.sha, branch=branch)
            pull = self.repo.create_pull(base=base, head=branch, title=title, body=body)
            return str(pull.html_url)


def _clip(text: str) -> str:
    if len(text) <= MAX_BODY:
        return text
    return text[: MAX_BODY - 60].rsplit("\n", 1)[0] + "\n\n… (truncated; see the run summary)\n"


# --- check run conclusion -------------------------------------------------------
def check_conclusion(plan: Plan) -> str:
    """``neutral`` when something requested cannot be served, else ``success``."""
    bad = {NodeStatus.MISSING, NodeStatus.SKIPPED_KNOWN_FAILURE}
    return "neutral" if any(n.requested and n.status in bad for n in plan.nodes) else "success"


def dispatch_inputs(
    nodes: Sequence[str],
    *,
    plan_id: str,
    wave: int,
    fixes: Sequence[str] = (),
    backend: str = "",
) -> dict[str, str]:
    """The ``workflow_dispatch`` inputs of ``main.yml`` that rebuild exactly ``nodes`` of
    wave ``wave`` from the stored plan ``plan_id`` (all strings; no nodes: the whole
    wave). Attempt numbers are not an input: they continue from the store's record."""
    return {
        "plan": plan_id,
        "wave": str(wave),
        "nodes": " ".join(nodes),
        "fixes": " ".join(fixes),
        "backend": backend,
    }


_RUN_URL = re.compile(r"^(?P<run>https?://.+/actions/runs/(?P<id>\d+))(?:/attempts/(?P<n>\d+))?/?$")


def parse_run_url(url: str) -> tuple[str, int, int]:
    """``(run URL without the attempt, run id, attempt)`` of an Actions run URL
    (``<server>/<repo>/actions/runs/<id>[/attempts/<n>]``; attempt 1 when absent)."""
    m = _RUN_URL.match(url)
    if m is None:
        raise GitHubError(f"not an Actions run URL: {url!r}")
    return m.group("run"), int(m.group("id")), int(m.group("n") or 1)


def job_url_of(run_url: str, job_id: str | int) -> str:
    """A job's own page (its live log): ``<run>/job/<id>``; the id is the job's check
    run id (the ``job.check_run_id`` context)."""
    run, _id, _attempt = parse_run_url(run_url)
    return f"{run}/job/{int(job_id)}"
