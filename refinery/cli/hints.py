"""``refinery hints check|match|learn``: the hint catalog on the command line, and the
advisor the build commands hand to the runner."""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from refinery.cli.app import Settings, _guard, main
from refinery.core.errors import InputError
from refinery.core.vocab import PACKAGE_MANAGERS

if TYPE_CHECKING:
    from refinery.core.models import BuildRecord
    from refinery.hints.matcher import Match
    from refinery.store import Store

MANAGER_CHOICES = (*PACKAGE_MANAGERS, "all")


hints_dir_option = click.option(
    "--hints",
    "hints_dir",
    default=Path("hints"),
    type=click.Path(path_type=Path),
    show_default=True,
    help="Catalog directory.",
)


@main.group()
def hints() -> None:
    """The hint catalog: validate it, match a log against it, learn from retries."""


def _print_problems(exc: Exception) -> None:
    from refinery.cli.render import gha_escape, on_github_actions
    from refinery.hints.loader import CatalogError

    problems = exc.problems if isinstance(exc, CatalogError) else ()
    for problem in problems:
        if on_github_actions():
            print(
                f"::error file={gha_escape(problem.location.path, prop=True)},"
                f"line={problem.location.line}::{gha_escape(problem.message)}",
                file=sys.stderr,
            )
        print(f"{problem}", file=sys.stderr)


@hints.command("check")
@click.argument("directory", required=False, default=Path("hints"), type=click.Path(path_type=Path))
def check(directory: Path) -> None:
    """Validate the catalog in DIRECTORY (default ./hints); every problem as FILE:LINE."""
    from refinery.hints import load_catalog
    from refinery.hints.loader import CatalogError

    if not directory.is_dir():
        print(f"refinery: error: {directory}: no such directory", file=sys.stderr)
        sys.exit(2)
    try:
        catalog = load_catalog(directory)
    except CatalogError as exc:
        _print_problems(exc)
        print(f"refinery: {len(exc.problems)} problem(s) in {directory}", file=sys.stderr)
        sys.exit(2)
    print(
        f"{directory}: {len(catalog.hints)} hints, {len(catalog.packages)} package entries "
        f"in {len(catalog.files)} files; digest {catalog.digest}"
    )


def _match_json(match: Match, managers: tuple[str, ...]) -> dict[str, Any]:
    fix = match.hint.fix
    return {
        "id": match.hint.id,
        "score": list(match.score),
        "where": str(match.hint.location) if match.hint.location else None,
        "lines": [{"line": ln.number, "text": ln.text} for ln in match.lines],
        "fix": {
            **{m: list(fix.packages_for(m)) for m in managers},
            "env": dict(fix.env),
            "constraints": list(fix.constraints),
            "build_requires": list(fix.build_requires),
        },
        "note": match.hint.note,
    }


@hints.command("match")
@click.argument("log", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@hints_dir_option
@click.option(
    "--manager",
    type=click.Choice(MANAGER_CHOICES),
    default="all",
    show_default=True,
    help="Show system packages for this package manager.",
)
@click.option(
    "--package",
    default=None,
    metavar="NAME[==VERSION]",
    help="Package (and version) the log is from (scoped hints).",
)
@click.option("--python", "python", default=None, metavar="3.N", help="Python version (scope).")
@click.option("--backend", default=None, help="Build root backend (scope).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_guard
def match(
    log: Path,
    hints_dir: Path,
    manager: str,
    package: str | None,
    python: str | None,
    backend: str | None,
    as_json: bool,
) -> None:
    """Print the hints matching LOG, best first, with their fixes; exit 1 if none match."""
    from refinery.hints import load_catalog
    from refinery.hints.matcher import scan_log
    from refinery.hints.models import fix_lines

    catalog = load_catalog(hints_dir)
    managers = PACKAGE_MANAGERS if manager == "all" else (manager,)
    name, _, version = (package or "").partition("==")
    found = scan_log(
        catalog,
        log,
        package=name.strip() or None,
        python=python,
        backend=backend,
        version=version.strip() or None,
    )
    if as_json:
        doc = {"schema": 1, "log": str(log), "matches": [_match_json(m, managers) for m in found]}
        print(json.dumps(doc, indent=2))
    elif not found:
        print(f"no hint in {hints_dir} matches {log}")
    for m in [] if as_json else found:
        where = f"  ({m.hint.location})" if m.hint.location else ""
        print(f"{m.hint.id}{where}")
        for line in m.lines:
            print(f"  matched L{line.number}: {line.text.strip()}")
        for fix_line in fix_lines(m.hint.fix, managers):
            print(f"  fix {fix_line}")
        if m.hint.note:
            print(f"  note: {m.hint.note}")
    sys.exit(0 if found else 1)


def _repo_path(path: Path) -> str:
    """``path`` relative to the git work tree (for the pull request)."""
    import subprocess

    absolute = path.resolve()
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=absolute.parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        return absolute.relative_to(top).as_posix()
    except (OSError, subprocess.SubprocessError, ValueError):
        return path.as_posix()


def _propose(path: Path, text: str, body: str, repo: str | None, api_url: str | None) -> str:
    import hashlib

    from refinery.gitops.github import GitHub

    if not repo:
        raise InputError("proposing needs --repo OWNER/NAME (or $GITHUB_REPOSITORY)")
    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    if not token:
        raise InputError("proposing needs a token: set $GITHUB_TOKEN (or $GH_TOKEN)")
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    with GitHub(repo, token, base_url=api_url) as gh:
        return gh.propose_file(
            _repo_path(path),
            text,
            branch=f"refinery/learned-hints-{digest}",
            title=f"hints: learned per-package fixes ({path.name})",
            body=body,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LearnCommand:
    """The ``hints learn`` command's options, as click parsed them."""

    hints_dir: Path
    target: Path | None
    nodes: tuple[str, ...]
    dry_run: bool
    propose: bool | None
    repo: str | None
    api_url: str | None


@hints.command("learn")
@hints_dir_option
@click.option(
    "--file",
    "target",
    default=None,
    type=click.Path(path_type=Path),
    help="Catalog file to add the entries to [default: HINTS/learned.yaml].",
)
@click.option(
    "--node",
    "nodes",
    multiple=True,
    metavar="NAME==VER@PY",
    help="Only these build records (default: every record in the store).",
)
@click.option("--dry-run", is_flag=True, help="Print the change, write nothing.")
@click.option(
    "--propose/--no-propose",
    default=None,
    help="Open a pull request with the change [default: on GitHub Actions].",
)
@click.option("--repo", envvar="GITHUB_REPOSITORY", default=None, help="OWNER/NAME for --propose.")
@click.option("--api-url", envvar="GITHUB_API_URL", default=None, help="GitHub API URL.")
@click.pass_obj
@_guard
def learn(settings: Settings, /, **given: Any) -> None:
    """Write per-package entries for builds a hint fixed on a retry, so the next build
    applies the fix before its first attempt; print the diff (and open a PR on Actions)."""
    from refinery.cli.render import on_github_actions
    from refinery.hints import load_catalog
    from refinery.hints.learn import add_entries, learned_from_records

    opts = LearnCommand(**given)
    catalog = load_catalog(opts.hints_dir)
    store = settings.open_store()
    learned = learned_from_records(_records(store, opts.nodes), catalog)
    if not learned:
        print(f"nothing to learn: no build in {store.url} was fixed by a hint it lacks")
        return
    path = opts.target or opts.hints_dir / "learned.yaml"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    new = add_entries(old, learned)
    diff = "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
        )
    )
    print(diff, end="")
    if opts.dry_run:
        return
    _write_checked(path, old, new, opts.hints_dir)
    names = ", ".join(item.package for item in learned)
    print(
        f"wrote {len(learned)} learned entr{'y' if len(learned) == 1 else 'ies'} "
        f"({names}) to {path}",
        file=sys.stderr,
    )
    propose = on_github_actions() if opts.propose is None else opts.propose
    if propose:
        body = (
            "Builds that succeeded on a retry thanks to these hints; with this entry the "
            "next build applies the fixes before its first attempt.\n\n"
            f"```diff\n{diff}```\n"
        )
        url = _propose(path, new, body, opts.repo, opts.api_url)
        print(f"proposed as {url}", file=sys.stderr)
    else:
        print(
            "not proposed (not on GitHub Actions; --propose to open a pull request)",
            file=sys.stderr,
        )


def _records(store: Store, nodes: Sequence[str]) -> list[BuildRecord]:
    """The build records of ``nodes`` (every record in the store when none are named)."""
    from refinery.core.models import parse_node_key

    if not nodes:
        return list(store.records())
    records = []
    for key in nodes:
        try:
            name, version, python = parse_node_key(key)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        record = store.get_record(name, version, python)
        if record is None:
            raise InputError(f"no build record for {key} in {store.url}")
        records.append(record)
    return records


def _write_checked(path: Path, old: str, new: str, hints_dir: Path) -> None:
    """Write ``new`` to ``path``; when it is part of the catalog, the catalog must still
    load, else the old text is put back and the error raised."""
    from refinery.hints import load_catalog

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
    if path.resolve().parent != hints_dir.resolve():
        return
    try:
        load_catalog(hints_dir)
    except InputError:
        if old:
            path.write_text(old, encoding="utf-8")
        else:
            path.unlink()
        raise
