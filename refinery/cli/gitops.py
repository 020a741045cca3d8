"""GitOps commands: ``mark-input``, ``dispatch``, ``comment``, ``reconcile``, ``status``.

These are what the workflows under ``.github/workflows/`` run besides plan/build/publish.
The GitHub token comes from ``$GITHUB_TOKEN`` (or ``$GH_TOKEN``), never from an option;
the API URL from ``--api-url``/``$GITHUB_API_URL`` (GitHub Enterprise Server sets it).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from refinery.cli.app import Settings, _guard, main
from refinery.core.errors import InputError
from refinery.core.models import InputStatus, Plan

if TYPE_CHECKING:
    from refinery.gitops.reconcile import Requeued, UpstreamWheel

_github_options = [
    click.option(
        "--repo",
        envvar="GITHUB_REPOSITORY",
        metavar="OWNER/NAME",
        help="Repository [default: $GITHUB_REPOSITORY].",
    ),
    click.option(
        "--api-url",
        envvar="GITHUB_API_URL",
        default="https://api.github.com",
        show_default=True,
        help="GitHub API base URL (GitHub Enterprise: https://HOST/api/v3).",
    ),
]


def _with_github_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_github_options):
        fn = option(fn)
    return fn


def _github(repo: str | None, api_url: str) -> Any:
    from refinery.gitops.github import GitHub

    if not repo:
        raise InputError("--repo OWNER/NAME is required (or $GITHUB_REPOSITORY)")
    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    if not token:
        raise InputError("no GitHub token: set $GITHUB_TOKEN (or $GH_TOKEN)")
    quiet = os.environ.get("REFINERY_GITHUB_RETRY", "1") == "0"
    return GitHub(repo, token, base_url=api_url, retry=not quiet, throttle=not quiet)


def _load_plan(path: Path) -> Plan:
    try:
        return Plan.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise InputError("plan file not found", path=str(path)) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a plan: {exc}", path=str(path)) from None


def _err(message: str) -> None:
    click.echo(message, err=True)


# --- input status -----------------------------------------------------------------
@main.command("mark-input")
@click.argument("status", type=click.Choice([str(s) for s in InputStatus]))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--plan", "plan_file", type=click.Path(path_type=Path), help="Link this plan.")
@click.option("--reason", default="", help="Why (for failed).")
@click.option("--reason-file", type=click.Path(path_type=Path), help="Read the reason from here.")
@click.option("--commit", envvar="GITHUB_SHA", default=None, help="[default: $GITHUB_SHA]")
@click.pass_obj
@_guard
def mark_input(
    settings: Settings,
    status: str,
    files: tuple[Path, ...],
    plan_file: Path | None,
    reason: str,
    reason_file: Path | None,
    commit: str | None,
) -> None:
    """Record STATUS for requirement FILES (input status per file@commit).

    With --plan, the plan is stored too and the inputs link to it."""
    from refinery.core.clock import now
    from refinery.plan.inputs import input_record

    linked = _load_plan(plan_file) if plan_file and plan_file.exists() else None
    plan_id = linked.plan_id if linked else None
    if reason_file is not None and reason_file.exists():
        lines = [ln.strip() for ln in reason_file.read_text(errors="replace").splitlines()]
        errors = [ln for ln in lines if "error" in ln.lower()] or [ln for ln in lines if ln]
        reason = reason or (errors[-1] if errors else "")
    store = settings.open_store()
    if linked is not None:
        store.put_plan(linked)  # plans/<plan_id>.json: what the input was planned into
    for f in files:
        record = input_record(
            f, status, plan_id=plan_id, reason=reason, commit=commit, updated=now()
        )
        store.put_input(record)
        _err(f"input {record.path}@{record.commit[:12]}: {status}")


# --- dispatch ---------------------------------------------------------------------
def _next_attempt(settings: Settings, keys: Sequence[str]) -> int:
    from refinery.core.models import parse_node_key

    store = settings.open_store()
    best = 1
    for key in keys:
        name, version, python = parse_node_key(key)
        record = store.get_record(name, version, python)
        if record is not None:
            best = max(best, len(record.attempts) + 1)
    return best


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchCommand:
    """The ``dispatch`` command's options, as click parsed them."""

    nodes: tuple[str, ...]
    attempt: int | None
    fixes: tuple[str, ...]
    plan_id: str | None
    workflow: str
    ref: str
    repo: str | None
    api_url: str


@main.command()
@click.argument("nodes", nargs=-1, required=True, metavar="NAME==VER@PY...")
@click.option("--attempt", type=int, help="Attempt number [default: next one in the store].")
@click.option("--fix", "fixes", multiple=True, metavar="HINT_ID", help="Fix to apply; repeat.")
@click.option("--plan", "plan_id", default=None, help="Plan the nodes belong to.")
@click.option("--workflow", default="build.yml", show_default=True)
@click.option("--ref", default="main", show_default=True, help="Branch to run the workflow on.")
@_with_github_options
@click.pass_obj
@_guard
def dispatch(settings: Settings, /, **given: Any) -> None:
    """Re-dispatch NODES (``name==version@python``) through build.yml's workflow_dispatch."""
    from refinery.core.models import node_key, parse_node_key
    from refinery.gitops.github import dispatch_inputs

    opts = DispatchCommand(**given)
    keys: list[str] = []
    for raw in opts.nodes:
        try:
            keys.append(node_key(*parse_node_key(raw)))
        except ValueError as exc:
            raise InputError(str(exc)) from None
    attempt = opts.attempt or _next_attempt(settings, keys)
    inputs = dispatch_inputs(keys, attempt=attempt, fixes=opts.fixes, plan_id=opts.plan_id)
    with _github(opts.repo, opts.api_url) as gh:
        gh.dispatch(opts.workflow, opts.ref, inputs)
    _err(f"dispatched {opts.workflow}@{opts.ref}: {len(keys)} node(s), attempt {attempt}")


# --- PR comment and check run -------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class CommentCommand:
    """The ``comment`` command's options, as click parsed them."""

    plan_file: Path | None
    error_file: Path | None
    output: Path | None
    pr: int | None
    head_sha: str | None
    author: str | None
    check: bool
    run_url: str | None
    repo: str | None
    api_url: str


@main.command()
@click.argument("plan_file", metavar="PLAN.json", type=click.Path(path_type=Path), required=False)
@click.option(
    "--error-file",
    type=click.Path(path_type=Path),
    help="Planning failed: comment this output instead of a plan.",
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the body here.")
@click.option("--pr", type=int, help="Upsert the comment on this pull request.")
@click.option("--head-sha", help="The PR head it is for (checked; the check run goes there).")
@click.option("--author", help="Only edit comments by this login (e.g. github-actions[bot]).")
@click.option("--check", is_flag=True, help="Also create a check run with the plan summary.")
@click.option("--run-url", help="Link to the run in the comment.")
@_with_github_options
@_guard
def comment(**given: Any) -> None:
    """Render the plan comment; with --pr, upsert ONE comment on the pull request."""
    opts = CommentCommand(**given)
    title, body, conclusion = _comment_body(opts)
    if opts.output is not None:
        opts.output.write_text(body)
    elif opts.pr is None:
        sys.stdout.write(body)
    if opts.pr is None and not opts.check:
        return
    if opts.check and not opts.head_sha:
        raise InputError("--check needs --head-sha")
    with _github(opts.repo, opts.api_url) as gh:
        if opts.pr is not None:
            done = gh.upsert_comment(
                opts.pr, body, author=opts.author, expect_head_sha=opts.head_sha
            )
            _err(f"comment {done.action}: {done.url}")
        if opts.check:
            assert opts.head_sha is not None
            url = gh.check_run(
                opts.head_sha, title, body, conclusion=conclusion, details_url=opts.run_url
            )
            _err(f"check run: {url}")


def _comment_body(opts: CommentCommand) -> tuple[str, str, str]:
    """(check-run title, comment body, check-run conclusion) for a plan or a failure."""
    from refinery.cli.render import plan_summary
    from refinery.gitops.github import COMMENT_MARKER, check_conclusion
    from refinery.plan.report import plan_markdown

    if opts.plan_file is not None and opts.plan_file.exists():
        result = _load_plan(opts.plan_file)
        body = plan_markdown(result, run_url=opts.run_url, marker=COMMENT_MARKER)
        return plan_summary(result), body, check_conclusion(result)
    if opts.error_file is not None:
        error_file = opts.error_file
        text = error_file.read_text(errors="replace") if error_file.exists() else ""
        tail = "\n".join(text.strip().splitlines()[-40:]).replace("```", "'''")
        link = f"\n[Run log]({opts.run_url})\n" if opts.run_url else ""
        heading = "### s390x wheel plan: planning failed"
        body = f"{COMMENT_MARKER}\n{heading}\n\n```\n{tail}\n```\n{link}"
        return "planning failed", body, "failure"
    raise InputError("give PLAN.json (or --error-file when planning failed)")


# --- reconcile ----------------------------------------------------------------------
def _group_for_dispatch(items: Sequence[Any], batch: int) -> list[tuple[list[str], int]]:
    by_python: dict[str, list[Any]] = {}
    for item in items:
        by_python.setdefault(item.python, []).append(item)
    out: list[tuple[list[str], int]] = []
    for python in sorted(by_python):
        group = by_python[python]
        for i in range(0, len(group), batch):
            chunk = group[i : i + batch]
            out.append(([r.key for r in chunk], max(r.next_attempt for r in chunk)))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileCommand:
    """The ``reconcile`` command's options, as click parsed them."""

    dry_run: bool
    upstream: bool
    platform: str
    do_dispatch: bool
    workflow: str
    ref: str
    batch: int
    as_json: bool
    summary: Path | None
    repo: str | None
    api_url: str


@main.command()
@click.option("--dry-run", is_flag=True, help="Report only; change nothing.")
@click.option(
    "--upstream/--no-upstream",
    default=True,
    show_default=True,
    help="Ask the index whether upstream now ships compatible s390x wheels.",
)
@click.option("--platform", default="manylinux_2_28_s390x", show_default=True)
@click.option("--dispatch", "do_dispatch", is_flag=True, help="Re-dispatch requeued nodes.")
@click.option("--workflow", default="build.yml", show_default=True)
@click.option("--ref", default="main", show_default=True)
@click.option("--batch", default=20, show_default=True, help="Nodes per dispatch.")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--summary",
    type=click.Path(path_type=Path),
    envvar="GITHUB_STEP_SUMMARY",
    help="Append a Markdown report here [default: $GITHUB_STEP_SUMMARY].",
)
@_with_github_options
@click.pass_obj
@_guard
def reconcile(settings: Settings, /, **given: Any) -> None:
    """Expired leases back to pending (and re-dispatched); upstream s390x wheels noticed."""
    from refinery.gitops.reconcile import expire_leases, upstream_wheels

    opts = ReconcileCommand(**given)
    store = settings.open_store()
    requeued = expire_leases(store, dry_run=opts.dry_run)
    found: list[UpstreamWheel] = []
    if opts.upstream:
        from refinery.upstream.simple import IndexClient

        index = IndexClient(settings.index_url, cache_dir=settings.cache_root.index)
        found = list(upstream_wheels(store.records(), index, platform=opts.platform))
    dispatched = _redispatch(opts, requeued) if opts.do_dispatch and not opts.dry_run else []
    report = _reconcile_report(requeued, dispatched, found, dry_run=opts.dry_run)
    if opts.as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        for r in requeued:
            click.echo(f"requeued {r.key} (was {r.was}, lease expired {r.lease_expires})")
        for d in dispatched:
            click.echo(f"dispatched {' '.join(d['nodes'])} (attempt {d['attempt']})")
        for u in found:
            click.echo(f"upstream {u.key}: {u.filename}")
        if not requeued and not found:
            click.echo("nothing to reconcile")
    if opts.summary is not None:
        with open(opts.summary, "a", encoding="utf-8") as f:
            f.write(_reconcile_markdown(report))


def _redispatch(opts: ReconcileCommand, requeued: Sequence[Requeued]) -> list[dict[str, Any]]:
    """Re-dispatch the requeued nodes in batches, per Python version."""
    from refinery.gitops.github import dispatch_inputs

    dispatched: list[dict[str, Any]] = []
    if not requeued:
        return dispatched
    with _github(opts.repo, opts.api_url) as gh:
        for keys, attempt in _group_for_dispatch(requeued, max(1, opts.batch)):
            gh.dispatch(opts.workflow, opts.ref, dispatch_inputs(keys, attempt=attempt))
            dispatched.append({"nodes": keys, "attempt": attempt})
    return dispatched


def _reconcile_report(
    requeued: Sequence[Requeued],
    dispatched: list[dict[str, Any]],
    found: Sequence[UpstreamWheel],
    *,
    dry_run: bool,
) -> dict[str, Any]:
    return {
        "requeued": [
            {
                "node": r.key,
                "was": r.was,
                "lease_expires": r.lease_expires,
                "plan_id": r.plan_id,
                "next_attempt": r.next_attempt,
            }
            for r in requeued
        ],
        "dispatched": dispatched,
        "upstream": [
            {"node": u.key, "status": u.status, "wheel": u.filename, "url": u.url} for u in found
        ],
        "dry_run": dry_run,
    }


def _reconcile_markdown(report: dict[str, Any]) -> str:
    lines = ["### Reconcile", ""]
    lines.append(
        f"{len(report['requeued'])} expired lease(s) back to pending, "
        f"{len(report['dispatched'])} dispatch(es), "
        f"{len(report['upstream'])} node(s) with an upstream s390x wheel."
    )
    if report["requeued"]:
        lines += ["", "| node | was | lease expired | next attempt |", "|---|---|---|---|"]
        lines += [
            f"| {r['node']} | {r['was']} | {r['lease_expires']} | {r['next_attempt']} |"
            for r in report["requeued"]
        ]
    if report["upstream"]:
        lines += ["", "| node | our status | upstream wheel |", "|---|---|---|"]
        lines += [
            f"| {u['node']} | {u['status']} | [{u['wheel']}]({u['url']}) |"
            for u in report["upstream"]
        ]
    return "\n".join(lines) + "\n"


# --- status -------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def status(settings: Settings, as_json: bool) -> None:
    """Counts per status of build records and inputs in the store."""
    from refinery.gitops.reconcile import status_counts

    store = settings.open_store()
    counts = status_counts(store)
    if as_json:
        doc = {"schema": 1, "store": store.url, **counts}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    click.echo(f"store {store.url}")
    for what in ("nodes", "inputs"):
        row = counts[what]
        total = sum(row.values())
        parts = ", ".join(f"{n} {s}" for s, n in row.items()) or "none"
        click.echo(f"{what}: {total} ({parts})")
