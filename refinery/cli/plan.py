"""``refinery plan``: requirements in, plan JSON / table / GitHub outputs out."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from refinery.cli.app import Settings, _guard, main, options
from refinery.core.errors import InputError
from refinery.core.models import Plan


def make_plan(
    settings: Settings,
    files: Sequence[Path],
    *,
    pythons: Sequence[str] = (),
    platform: str | None = None,
    max_jobs: int = 256,
    refresh: bool = False,
    hints_dir: Path = Path("hints"),
    progress: Callable[[str, int, int], None] | None = None,
) -> Plan:
    """Parse, resolve and decide: the ``plan`` stage with its parts built from the
    settings and the environment (read here, once)."""
    from refinery.cli import parts
    from refinery.cli.config import resolve_targets
    from refinery.hints import catalog_digest
    from refinery.plan import PlanOptions, parse_files
    from refinery.plan import make_plan as plan_stage

    pythons, platform = resolve_targets(files, pythons, platform)  # refinery.toml
    options = PlanOptions(
        targets=parts.targets(pythons, platform),
        max_jobs=max_jobs,
        catalog_digest=catalog_digest(hints_dir),
    )
    return plan_stage(
        parse_files(list(files)),
        index=parts.index_client(settings, refresh=refresh),
        resolver=parts.resolver(settings, refresh=refresh),
        store=settings.open_store(),
        options=options,
        progress=progress,
    )


# What ``plan`` and ``run`` share: the inputs and the targets they are planned for.
target_options = options(
    click.argument("requirements", nargs=-1, required=True, type=click.Path(path_type=Path)),
    click.option(
        "--python",
        "pythons",
        multiple=True,
        metavar="3.N",
        help="Target CPython version; repeat for several [default: refinery.toml, else 3.11].",
    ),
    click.option(
        "--platform",
        default=None,
        help="Target platform [default: refinery.toml, else manylinux_2_28_s390x].",
    ),
    click.option("--refresh", is_flag=True, help="Ignore cached index pages and resolutions."),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanCommand:
    """The ``plan`` command's options, as click parsed them."""

    requirements: tuple[Path, ...]
    pythons: tuple[str, ...]
    platform: str | None
    refresh: bool
    as_json: bool
    output: Path | None
    github_output: bool
    max_jobs: int
    hints_dir: Path


@main.command()
@target_options
@click.option("--json", "as_json", is_flag=True, help="Write the plan JSON (stdout, or -o).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the plan JSON here.")
@click.option(
    "--github-output",
    is_flag=True,
    help="Append matrix=…, waves=… and matrix_wave_N=… to $GITHUB_OUTPUT.",
)
@click.option("--max-jobs", default=256, show_default=True, help="Matrix entries per wave.")
@click.option(
    "--hints",
    "hints_dir",
    type=click.Path(path_type=Path),
    default=Path("hints"),
    show_default=True,
)
@click.pass_obj
@_guard
def plan(settings: Settings, /, **given: Any) -> None:
    """Resolve REQUIREMENTS for s390x and decide what to build."""
    from rich.console import Console

    from refinery.cli.render import make_console, plan_summary, plan_table, progress_reporter

    opts = PlanCommand(**given)
    err = Console(stderr=True)
    with progress_reporter(err) as bar:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if bar is None:
                return
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        result = make_plan(
            settings,
            opts.requirements,
            pythons=opts.pythons,
            platform=opts.platform,
            max_jobs=opts.max_jobs,
            refresh=opts.refresh,
            hints_dir=opts.hints_dir,
            progress=on_progress,
        )
    doc = json.dumps(result.to_json(), indent=2) + "\n"
    if opts.output is not None:
        opts.output.parent.mkdir(parents=True, exist_ok=True)
        opts.output.write_text(doc)
    if opts.as_json and opts.output is None:
        sys.stdout.write(doc)
    elif not opts.as_json:
        make_console().print(plan_table(result))
    err.print(plan_summary(result))
    if opts.github_output:
        _write_github_output(result, os.environ)


def _write_github_output(result: Plan, environ: Mapping[str, str]) -> None:
    """The job outputs (``$GITHUB_OUTPUT``) and the plan table (``$GITHUB_STEP_SUMMARY``)."""
    from refinery.plan import matrices_by_wave, plan_markdown

    target = environ.get("GITHUB_OUTPUT")
    if not target:
        raise InputError("--github-output needs $GITHUB_OUTPUT (set by GitHub Actions)")
    per_wave = matrices_by_wave(result.matrix)
    with open(target, "a", encoding="utf-8") as f:
        f.write(f"plan_id={result.plan_id}\n")
        f.write(f"matrix={json.dumps(dict(result.matrix), separators=(',', ':'))}\n")
        f.write(f"waves={len(per_wave)}\n")
        for i, m in enumerate(per_wave):
            f.write(f"matrix_wave_{i}={json.dumps(m, separators=(',', ':'))}\n")
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(plan_markdown(result))


# --- build ------------------------------------------------------------------------
