"""``refinery verify``: the store checked against itself (records, wheels, metadata,
project summaries, uploaded index pages); exit 1 when anything is at fault."""

from __future__ import annotations

import sys

import click

from refinery.cli.app import Settings, _guard, main
from refinery.cli.store import _emit, json_option


@main.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Wheels read at once.",
)
@json_option
@click.pass_obj
@_guard
def verify(settings: Settings, workers: int, as_json: bool) -> None:
    """Check every record, wheel (sha256 of its bytes), metadata file, summary and
    uploaded index page against each other; list every object at fault, exit 1 if any."""
    from refinery.store.verify import verify_store

    report = verify_store(settings.open_store(), workers=workers)
    line = (
        f"verified {report.wheels} wheels, {report.metadata} metadata files, "
        f"{report.records} records, {report.summaries} summaries, {report.pages} index "
        f"pages ({report.links} links) in {report.url}: "
        + ("all consistent" if report.ok else f"{len(report.problems)} problems")
    )
    _emit(report.to_json(), as_json, line)
    if not as_json:
        for problem in report.problems:
            print(f"refinery: tampered or broken: {problem.line()}", file=sys.stderr)
    if not report.ok:
        sys.exit(1)
