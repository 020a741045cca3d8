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
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import click

from refinery.cli.app import Settings, _guard, main
from refinery.core.errors import InputError
from refinery.core.models import BuildRecord, InputStatus, Plan

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
@click.option(
    "--advance",
    is_flag=True,
    help="Also record --commit as the last planned one (a push plans what changed since).",
)
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
    advance: bool,
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
    if advance:
        from refinery.store.ledger import PlannedMark

        if not commit:
            raise InputError("--advance needs --commit (or $GITHUB_SHA)")
        store.put_planned(PlannedMark(commit, plan_id or "", now()))
        _err(f"planned up to {commit[:12]}")


# --- dispatch ---------------------------------------------------------------------
def _wave_of(settings: Settings, plan_id: str, keys: Sequence[str]) -> int:
    """The one wave of the stored plan ``plan_id`` that holds every key."""
    stored = settings.open_store().get_plan(plan_id)
    if stored is None:
        raise InputError(f"plan {plan_id} is not in the store")
    waves: set[int] = set()
    for key in keys:
        try:
            waves.add(stored.node(key).wave or 0)
        except KeyError:
            raise InputError(f"{key} is not a node of plan {plan_id}") from None
    if len(waves) != 1:
        raise InputError(f"the nodes are in waves {sorted(waves)}; dispatch one wave at a time")
    return waves.pop()


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchCommand:
    """The ``dispatch`` command's options, as click parsed them."""

    nodes: tuple[str, ...]
    plan_id: str
    wave: int | None
    fixes: tuple[str, ...]
    backend: str
    workflow: str
    ref: str
    repo: str | None
    api_url: str


@main.command()
@click.argument("nodes", nargs=-1, required=True, metavar="NAME==VER@PY...")
@click.option("--plan", "plan_id", required=True, help="The stored plan the nodes come from.")
@click.option("--wave", type=int, help="Their wave [default: from the stored plan].")
@click.option("--fix", "fixes", multiple=True, metavar="HINT_ID", help="Fix to apply; repeat.")
@click.option("--backend", "backend", default="", help="Build them on this backend instead.")
@click.option("--workflow", default="main.yml", show_default=True)
@click.option("--ref", default="main", show_default=True, help="Branch to run the workflow on.")
@_with_github_options
@click.pass_obj
@_guard
def dispatch(settings: Settings, /, **given: Any) -> None:
    """Re-dispatch NODES (``name==version@python``) of a stored plan through main.yml's
    workflow_dispatch: exactly those nodes are built again, from that plan; attempt
    numbers continue from the store's records."""
    from refinery.core.models import node_key, parse_node_key
    from refinery.gitops.github import dispatch_inputs

    opts = DispatchCommand(**given)
    keys: list[str] = []
    for raw in opts.nodes:
        try:
            keys.append(node_key(*parse_node_key(raw)))
        except ValueError as exc:
            raise InputError(str(exc)) from None
    wave = opts.wave if opts.wave is not None else _wave_of(settings, opts.plan_id, keys)
    inputs = dispatch_inputs(
        keys, plan_id=opts.plan_id, wave=wave, fixes=opts.fixes, backend=opts.backend
    )
    with _github(opts.repo, opts.api_url) as gh:
        gh.dispatch(opts.workflow, opts.ref, inputs)
    _err(f"dispatched {opts.workflow}@{opts.ref}: {len(keys)} node(s) of wave {wave}")


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
def _dispatch_groups(
    store: Any, items: Sequence[Requeued], batch: int
) -> tuple[list[tuple[str, int, list[str]]], list[str]]:
    """``(plan_id, wave, keys)`` per dispatch (at most ``batch`` keys), and the keys that
    cannot be rebuilt from the plan that produced them (no plan recorded or stored)."""
    plans: dict[str, Plan | None] = {}
    by: dict[tuple[str, int], list[str]] = {}
    orphans: list[str] = []
    for item in items:
        if item.plan_id and item.plan_id not in plans:
            plans[item.plan_id] = store.get_plan(item.plan_id)
        plan = plans.get(item.plan_id or "")
        try:
            wave = plan.node(item.key).wave if plan is not None else None
        except KeyError:
            wave = None
        if plan is None or wave is None:
            orphans.append(item.key)
            continue
        by.setdefault((plan.plan_id, wave), []).append(item.key)
    out: list[tuple[str, int, list[str]]] = []
    for (plan_id, wave), keys in sorted(by.items()):
        for i in range(0, len(keys), batch):
            out.append((plan_id, wave, keys[i : i + batch]))
    return out, orphans


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


#: ``--summary``: where a command appends its Markdown report (a step summary on Actions).
_summary_option = click.option(
    "--summary",
    type=click.Path(path_type=Path),
    envvar="GITHUB_STEP_SUMMARY",
    help="Append a Markdown report here [default: $GITHUB_STEP_SUMMARY].",
)


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
@click.option("--workflow", default="main.yml", show_default=True)
@click.option("--ref", default="main", show_default=True)
@click.option("--batch", default=20, show_default=True, help="Nodes per dispatch.")
@click.option("--json", "as_json", is_flag=True)
@_summary_option
@_with_github_options
@click.pass_obj
@_guard
def reconcile(settings: Settings, /, **given: Any) -> None:
    """Expired leases back to pending (and re-dispatched); upstream s390x wheels noticed."""
    from refinery.gitops.reconcile import expire_leases, upstream_wheels

    opts = ReconcileCommand(**given)
    store = settings.open_store()
    requeued = expire_leases(store, dry_run=True)
    if not opts.dry_run and not opts.do_dispatch:
        requeued = expire_leases(store)
    found: list[UpstreamWheel] = []
    if opts.upstream:
        from refinery.upstream.simple import IndexClient

        index = IndexClient(settings.index_url, cache_dir=settings.cache_root.index)
        found = list(upstream_wheels(store.records(), index, platform=opts.platform))
    dispatched = _redispatch(opts, store, requeued) if opts.do_dispatch and not opts.dry_run else []
    report = _reconcile_report(requeued, dispatched, found, dry_run=opts.dry_run)
    if opts.as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        for r in requeued:
            click.echo(f"requeued {r.key} (was {r.was}, lease expired {r.lease_expires})")
        for d in dispatched:
            click.echo(f"dispatched {' '.join(d['nodes'])} (plan {d['plan']}, wave {d['wave']})")
        for u in found:
            click.echo(f"upstream {u.key}: {u.filename}")
        if not requeued and not found:
            click.echo("nothing to reconcile")
    if opts.summary is not None:
        with open(opts.summary, "a", encoding="utf-8") as f:
            f.write(_reconcile_markdown(report))


def _redispatch(
    opts: ReconcileCommand, store: Any, requeued: Sequence[Requeued]
) -> list[dict[str, Any]]:
    """Re-dispatch the expired nodes per plan and wave, each batch requeued only once
    its dispatch succeeded (a failed one raises; the rest stay for the next run)."""
    from refinery.gitops.github import dispatch_inputs
    from refinery.gitops.reconcile import expire_leases

    dispatched: list[dict[str, Any]] = []
    groups, orphans = _dispatch_groups(store, requeued, max(1, opts.batch))
    if groups:
        with _github(opts.repo, opts.api_url) as gh:
            for plan_id, wave, keys in groups:
                gh.dispatch(
                    opts.workflow, opts.ref, dispatch_inputs(keys, plan_id=plan_id, wave=wave)
                )
                note = f"re-dispatched (plan {plan_id}, wave {wave})"
                expire_leases(store, only=set(keys), note=note)
                dispatched.append({"nodes": keys, "plan": plan_id, "wave": wave})
    if orphans:
        expire_leases(store, only=set(orphans), note="no stored plan to rebuild it from")
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


# --- waves on GitHub: what a build job reads, what runs after a wave ----------------------
def _node_list(text: str) -> list[str]:
    from refinery.core.models import node_key, parse_node_key

    try:
        return [node_key(*parse_node_key(raw)) for raw in text.split()]
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _wave_matrix(plan: Plan, wave: int, nodes: Sequence[str]) -> dict[str, Any]:
    """The build matrix of ``wave`` (of exactly ``nodes``, when given: one shard)."""
    from refinery.plan import matrices_by_wave

    keys = _wave_keys(plan, wave)
    stray = [k for k in nodes if k not in keys]
    if stray:
        raise InputError(f"not in wave {wave} of plan {plan.plan_id}: {' '.join(stray)}")
    if nodes:
        return {"include": [{"shard": 0, "wave": wave, "nodes": list(nodes)}]}
    return dict(matrices_by_wave(plan.matrix)[wave])


@main.command()
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder.")
@click.option("--plan", "plan_id", default="", help="Copy this stored plan and its nodes.")
@click.option("--wave", type=int, default=0, show_default=True, help="The wave to build.")
@click.option("--nodes", default="", help="Only these nodes of the wave (space-separated).")
@click.option("--plan-out", type=click.Path(path_type=Path), help="Also write the plan here.")
@click.option("--github-output", is_flag=True, help="since=, waves=, matrix= to $GITHUB_OUTPUT.")
@click.pass_obj
@_guard
def snapshot(settings: Settings, /, **given: Any) -> None:
    """Copy what build jobs read from the store into a folder store (run where no
    package code runs): the last planned commit and, with --plan, the plan, its nodes'
    records and the wheels of those built. Build jobs read it beneath their staging
    store ($REFINERY_STORE_BASE) and upload only what they produce."""
    from refinery.store import Store
    from refinery.store.snapshot import snapshot as take

    opts = SimpleNamespace(**given)
    store = settings.open_store()
    target = Store.open(str(opts.output))
    done = take(store, target, plan_id=opts.plan_id or None)
    if opts.plan_id and done.plan is None:
        raise InputError(f"plan {opts.plan_id} is not in the store {store.url}")
    out: dict[str, str] = {}
    mark = store.get_planned()
    out["since"] = mark.commit if mark is not None else ""
    if done.plan is not None:
        nodes = _node_list(opts.nodes)
        matrix = _wave_matrix(done.plan, opts.wave, nodes)
        out.update(
            plan_id=done.plan.plan_id,
            waves=str(len(done.plan.waves)),
            matrix=json.dumps(matrix, separators=(",", ":")),
        )
        if opts.plan_out is not None:
            opts.plan_out.parent.mkdir(parents=True, exist_ok=True)
            opts.plan_out.write_text(json.dumps(done.plan.to_json(), indent=2) + "\n")
    _err(
        f"snapshot of {store.url}: last planned {out['since'][:12] or 'never'}; "
        f"{done.records} record(s), {done.wheels} wheel(s)"
    )
    if opts.github_output:
        _append_github_output(out)


def _append_github_output(values: dict[str, str]) -> None:
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        raise InputError("--github-output needs $GITHUB_OUTPUT (set by GitHub Actions)")
    with open(target, "a", encoding="utf-8") as f:
        for key, value in values.items():
            f.write(f"{key}={value}\n")


@main.command("stamp-run")
@click.option("--url", required=True, help="The Actions run (attempt) that built them.")
@click.option("--job", default="", help="The job's name.")
@click.option(
    "--job-id",
    default="",
    help="The job's id: the job.check_run_id context (its page is <run>/job/<id>).",
)
@click.option(
    "--lookup",
    is_flag=True,
    help="No --job-id (GitHub Enterprise Server has no job.check_run_id): ask the API "
    "for the job named --job in this run attempt (token with actions: read).",
)
@_with_github_options
@click.pass_obj
@_guard
def stamp_run(settings: Settings, /, **given: Any) -> None:
    """Put the Actions run URL and the job URL (its live log) into every record of
    --store (a build job's own staging store: run without $REFINERY_STORE_BASE): the
    record, its attempts this job made, and an ``actions-run`` event in its timeline."""
    from refinery.core.clock import now
    from refinery.gitops.github import job_url_of, parse_run_url

    url, job, job_id = given["url"], given["job"], given["job_id"]
    _run, run_id, attempt = parse_run_url(url)
    job_url = job_url_of(url, job_id) if job_id else ""
    if not job_url and given["lookup"] and job:
        with _github(given["repo"], given["api_url"]) as gh:
            job_url = gh.job_url(run_id, attempt, job) or ""
    store = settings.open_store()
    message = " ".join(x for x in (f"{job}:" if job else "", url, job_url) if x)
    count = 0
    for record in list(store.records()):

        def change(current: BuildRecord | None, record: BuildRecord = record) -> BuildRecord:
            return _stamped(current or record, url, job_url).with_event(
                now(), "actions-run", message
            )

        store.update_record(record.name, record.version, record.python, change)
        count += 1
    _err(f"{count} record(s) link {job_url or url}")


@main.command()
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wave", type=int, default=0, show_default=True)
@click.option("--nodes", default="", help="Only these nodes of the wave (a re-dispatch).")
@click.option("--run-url", required=True, help="The Actions run that builds the wave.")
@click.option(
    "--minutes",
    type=click.IntRange(1),
    default=360,
    show_default=True,
    help="How long the announced lease holds (the build job's limit).",
)
@click.pass_obj
@_guard
def announce(
    settings: Settings, plan_file: Path, wave: int, nodes: str, run_url: str, minutes: int
) -> None:
    """Stage ``leased`` records for the wave's pending nodes in --store (published at
    once, so the store and the site show who builds what while the wave runs)."""
    from refinery.gitops.live import announce as stage_leases

    plan = _load_plan(plan_file)
    keys = _node_list(nodes) or list(_wave_keys(plan, wave))
    done = stage_leases(settings.open_store(), plan, keys, run_url, minutes * 60)
    _err(f"{len(done)} node(s) of wave {wave} announced as leased by {run_url}")


def _wave_keys(plan: Plan, wave: int) -> tuple[str, ...]:
    if not 0 <= wave < len(plan.waves):
        raise InputError(f"plan {plan.plan_id} has {len(plan.waves)} wave(s), not wave {wave}")
    return tuple(plan.waves[wave])


def _stamped(record: BuildRecord, run_url: str, job_url: str) -> BuildRecord:
    """``record`` with the run and job on it and on the attempts no job claimed yet."""
    from dataclasses import replace

    attempts = tuple(
        a if a.run_url else replace(a, run_url=run_url, job_url=job_url) for a in record.attempts
    )
    return record.evolve(attempts=attempts, run_url=run_url, job_url=job_url)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdvanceCommand:
    """The ``advance`` command's options, as click parsed them."""

    plan_id: str
    wave: int
    nodes: str
    budget: int
    do_dispatch: bool
    workflow: str
    ref: str
    run_url: str
    summary: Path | None
    repo: str | None
    api_url: str


@main.command()
@click.option("--plan", "plan_id", required=True, help="The stored plan being built.")
@click.option("--wave", type=int, required=True, help="The wave this run built.")
@click.option("--nodes", default="", help="This run rebuilt only these nodes of the wave.")
@click.option("--budget", default=2, show_default=True, help="Re-dispatches per node.")
@click.option("--dispatch/--dry-run", "do_dispatch", default=True, show_default=True)
@click.option("--workflow", default="main.yml", show_default=True)
@click.option("--ref", default="main", show_default=True)
@click.option("--run-url", default="", help="This run, for the nodes' timelines.")
@_summary_option
@_with_github_options
@click.pass_obj
@_guard
def advance(settings: Settings, /, **given: Any) -> None:
    """After a wave was published: re-dispatch its nodes a fresh runner can fix (within
    the budget), else dispatch the next wave of the plan."""
    from refinery.gitops.github import dispatch_inputs
    from refinery.gitops.redispatch import next_step, requeue

    opts = AdvanceCommand(**given)
    store = settings.open_store()
    plan = store.get_plan(opts.plan_id)
    if plan is None:
        raise InputError(f"plan {opts.plan_id} is not in the store {store.url}")
    only = _node_list(opts.nodes) or None
    step = next_step(store, plan, opts.wave, only=only, budget=opts.budget)
    lines = [f"### Plan {plan.plan_id}, wave {opts.wave} of {len(plan.waves)}", ""]
    for r in step.redispatch:
        lines.append(f"- re-dispatch `{r.key}`{' on ' + r.backend if r.backend else ''}: {r.why}")
    lines += [f"- `{k}`: re-dispatch budget ({opts.budget}) spent" for k in step.exhausted]
    lines += [f"- `{k}`: failed (see its log)" for k in step.final]
    if step.next_wave is not None:
        lines.append(f"- next: wave {step.next_wave}")
    if opts.do_dispatch:
        with _github(opts.repo, opts.api_url) as gh:
            for backend, keys in step.groups():
                inputs = dispatch_inputs(
                    keys, plan_id=plan.plan_id, wave=opts.wave, backend=backend
                )
                gh.dispatch(opts.workflow, opts.ref, inputs)
                requeue(store, plan, [r for r in step.redispatch if r.key in keys], opts.run_url)
            if step.next_wave is not None:
                gh.dispatch(
                    opts.workflow,
                    opts.ref,
                    dispatch_inputs((), plan_id=plan.plan_id, wave=step.next_wave),
                )
    for line in lines[2:]:
        click.echo(line[2:])
    if opts.summary is not None:
        with open(opts.summary, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
