"""``refinery wheels check|ingest|comment``: wheel upload, GitOps form.

The committed list is ``wheels/*.toml`` (:mod:`refinery.gitops.wheels` has the format).
A pull request runs ``check`` (no credentials: download, verify, the ingest checks,
nothing stored) and hands the verdict JSON to ``wheels-comment.yml``, which renders and
posts it with ``comment``; a push to the default branch runs ``ingest``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from refinery.cli.app import Settings, _guard, main
from refinery.cli.gitops import _github, _summary_option, _with_github_options
from refinery.core.errors import BuildFailed, InputError

if TYPE_CHECKING:
    from refinery.gitops.wheels import FetchOptions, Verdict, WheelEntry


@main.group()
def wheels() -> None:
    """A committed list of wheels (wheels/*.toml): check on a PR, ingest on merge."""


def _entries(files: Sequence[Path]) -> list[WheelEntry]:
    from refinery.gitops.wheels import WHEELS_DIR, load_wheel_lists

    paths = list(files) or sorted(Path(WHEELS_DIR).glob("*.toml"))
    read: list[tuple[str, bytes]] = []
    for path in paths:
        try:
            read.append((str(path), path.read_bytes()))
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
    return load_wheel_lists(read)


@dataclass(frozen=True, slots=True, kw_only=True)
class WheelsCommand:
    """The options ``check`` and ``ingest`` share, as click parsed them."""

    files: tuple[Path, ...]
    comment: Path | None
    json_out: Path | None
    allow_http_loopback: bool
    server_url: str
    run_url: str
    summary: Path | None


_common = [
    click.argument("files", nargs=-1, type=click.Path(path_type=Path)),
    click.option("--comment", type=click.Path(path_type=Path), help="Write the Markdown here."),
    click.option("--json-out", type=click.Path(path_type=Path), help="Write the verdict JSON."),
    click.option(
        "--allow-http-loopback",
        is_flag=True,
        envvar="REFINERY_WHEELS_HTTP_LOOPBACK",
        help="Allow plain http to a loopback address (tests) "
        "[env var: REFINERY_WHEELS_HTTP_LOOPBACK].",
    ),
    click.option(
        "--server-url",
        envvar="GITHUB_SERVER_URL",
        default="https://github.com",
        show_default=True,
        help="Where release assets are [default: $GITHUB_SERVER_URL].",
    ),
    click.option("--run-url", default="", help="Link to the run in the comment."),
    _summary_option,
]


def _with_common(fn: Any) -> Any:
    for option in reversed(_common):
        fn = option(fn)
    return fn


def _fetch_options(opts: WheelsCommand) -> FetchOptions:
    from refinery.gitops.wheels import FetchOptions

    return FetchOptions(server_url=opts.server_url, allow_loopback_http=opts.allow_http_loopback)


def _report(opts: WheelsCommand, verdicts: Sequence[Verdict], stored: dict[str, bool]) -> None:
    from refinery.gitops.wheels import verdict_doc, verdict_markdown

    doc = verdict_doc(verdicts)
    for v in verdicts:
        state = "ok" if v.ok else "REFUSED"
        detail = v.detail
        if v.entry.filename in stored:
            detail = "ingested" if stored[v.entry.filename] else "already in the store"
        click.echo(f"{state:8} {v.entry.where}: {v.entry.filename}: {detail}")
    markdown = verdict_markdown(doc, run_url=opts.run_url)
    if opts.json_out is not None:
        opts.json_out.parent.mkdir(parents=True, exist_ok=True)
        opts.json_out.write_text(json.dumps(doc, indent=1) + "\n")
    if opts.comment is not None:
        opts.comment.parent.mkdir(parents=True, exist_ok=True)
        opts.comment.write_text(markdown)
    if opts.summary is not None:
        with open(opts.summary, "a", encoding="utf-8") as f:
            f.write(markdown.split("\n", 1)[1])
    refused = sum(1 for v in verdicts if not v.ok)
    if refused:
        raise BuildFailed(f"{refused} of {len(verdicts)} wheel(s) refused; nothing stored")


@wheels.command("check")
@_with_common
@click.pass_obj
@_guard
def check(settings: Settings, /, **given: Any) -> None:
    """Download every wheel of FILES [default: wheels/*.toml], verify its sha256 and run
    the ingest checks, storing nothing. With --store, also refuse other bytes under a
    name the store already records or serves. Exit 1 when a wheel is refused."""
    from refinery.gitops.wheels import check_entries, work_folder

    opts = WheelsCommand(**given)
    entries = _entries(opts.files)
    store = settings.open_store() if settings.store else None
    with work_folder() as folder:
        verdicts = check_entries(entries, folder, _fetch_options(opts), store=store)
    _report(opts, verdicts, {})


@wheels.command("ingest")
@_with_common
@click.pass_obj
@_guard
def ingest(settings: Settings, /, **given: Any) -> None:
    """Check every wheel of FILES [default: wheels/*.toml] and store them, all or
    nothing; a wheel already stored with the same bytes is left as it is."""
    from refinery.gitops.wheels import ingest_entries, work_folder

    opts = WheelsCommand(**given)
    if not settings.store:
        raise InputError("wheels ingest needs --store (or $REFINERY_STORE)")
    entries = _entries(opts.files)
    store = settings.open_store()
    with work_folder() as folder:
        verdicts, results = ingest_entries(entries, folder, _fetch_options(opts), store=store)
    _report(opts, verdicts, {r.wheel.filename: r.stored for r in results})


@wheels.command("comment")
@click.argument("verdict", metavar="VERDICT.json", type=click.Path(path_type=Path))
@click.option("--pr", type=int, help="Upsert the comment on this pull request.")
@click.option("--head-sha", help="The PR head it is for (checked).")
@click.option("--author", help="Only edit comments by this login (e.g. github-actions[bot]).")
@click.option("--run-url", default="", help="Link to the run in the comment.")
@_with_github_options
@_guard
def comment(**given: Any) -> None:
    """Render a verdict (from `wheels check --json-out`) as the PR comment; with --pr,
    upsert ONE comment (its own marker, beside the plan comment)."""
    from refinery.gitops.wheels import COMMENT_MARKER, verdict_markdown

    path: Path = given["verdict"]
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"not a verdict: {exc}", path=str(path)) from None
    body = verdict_markdown(doc, run_url=given["run_url"])
    if given["pr"] is None:
        sys.stdout.write(body)
        return
    with _github(given["repo"], given["api_url"]) as gh:
        done = gh.upsert_comment(
            given["pr"],
            body,
            marker=COMMENT_MARKER,
            author=given["author"],
            expect_head_sha=given["head_sha"],
        )
    click.echo(f"comment {done.action}: {done.url}", err=True)
