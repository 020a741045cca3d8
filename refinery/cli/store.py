"""``refinery publish``, ``index``, ``ingest`` and ``serve``: the store stage."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from refinery.cli.app import Settings, _guard, main
from refinery.core.errors import InputError


def _emit(doc: dict[str, object], as_json: bool, line: str) -> None:
    if as_json:
        print(json.dumps(doc, indent=1))
    else:
        print(line)


@main.command()
@click.option(
    "--from",
    "source",
    required=True,
    metavar="STAGING",
    help="The staging store a build job wrote (a folder or URL).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
@_guard
def publish(settings: Settings, source: str, as_json: bool) -> None:
    """Copy wheels, metadata, logs, plans and records from STAGING into the store.

    Wheels and metadata first, records last (merged with compare-and-swap): the index,
    derived from records, never points at a wheel that is not there."""
    from refinery.store.ledger import Store
    from refinery.store.publish import publish as run_publish

    staging = Store.open(source)
    target = Store.open(settings.store)
    if staging.url == target.url:
        raise InputError(f"--from {source}: that is the store itself")
    result = run_publish(staging, target)
    line = (
        f"published {result.records} records, {result.wheels} new wheels "
        f"({result.wheels_present} already there), {result.logs} logs into {result.target}"
    )
    _emit(result.to_json(), as_json, line)
    for key in result.log_conflicts:
        print(f"refinery: warning: {key}: a different log is already stored", file=sys.stderr)


@main.command()
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("index"),
    show_default=True,
    help="Folder to render the index into.",
)
@click.option("--full", is_flag=True, help="Re-derive everything from the build records.")
@click.option("--upload", is_flag=True, help="Also put the pages into the store (bucket).")
@click.option(
    "--overlay-pypi",
    "overlay",
    is_flag=True,
    help="List PyPI's own files on each project page too (uv's first-index rule).",
)
@click.option("--upstream-url", default=None, help="Upstream index for --overlay-pypi.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
@_guard
def index(
    settings: Settings,
    out: Path,
    full: bool,
    upload: bool,
    overlay: bool,
    upstream_url: str | None,
    as_json: bool,
) -> None:
    """Render the static pip index (PEP 503 HTML, PEP 691 JSON, PEP 658 metadata).

    Serve OUT with `refinery serve OUT` (content negotiation) or any static server."""
    from refinery.index.render import build_index
    from refinery.store.ledger import Store

    store = Store.open(settings.store)
    result = build_index(
        store,
        out,
        full=full,
        upload=upload,
        overlay_url=(upstream_url or settings.index_url) if overlay else None,
        cache_dir=settings.cache_dir,
    )
    mode = "full" if result.full else "incremental"
    line = (
        f"index ({mode}): {result.projects} projects, {result.files} files, "
        f"{len(result.rendered)} pages rendered, {len(result.removed)} removed"
        + (f", {len(result.repaired)} summaries repaired" if result.repaired else "")
        + (f", {result.uploaded} pages uploaded" if upload else "")
        + f" in {result.seconds:.2f} s -> {out}/simple/"
    )
    _emit(result.to_json(), as_json, line)


@main.command()
@click.argument("wheels", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--python",
    default="3.11",
    show_default=True,
    metavar="3.N",
    help="Record pure and abi3 wheels under this Python.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
@_guard
def ingest(settings: Settings, wheels: tuple[Path, ...], python: str, as_json: bool) -> None:
    """Validate existing WHEELS and add them to the store (all or nothing)."""
    from refinery.store.ingest import ingest as run_ingest
    from refinery.store.ledger import Store

    results = run_ingest(Store.open(settings.store), list(wheels), python=python)
    if as_json:
        print(json.dumps({"schema": 1, "ingested": [r.to_json() for r in results]}, indent=1))
        return
    for r in results:
        state = "ingested" if r.stored else "already in the store"
        print(f"{r.wheel.filename}: {state} as {r.name}=={r.version}@{r.python}")


@main.command()
@click.argument(
    "directory",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("index"),
)
@click.option("--bind", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@_guard
def serve(directory: Path, bind: str, port: int) -> None:
    """Serve an index folder, with PEP 691 content negotiation (JSON or HTML)."""
    from http.server import ThreadingHTTPServer

    from refinery.index.render import handler

    httpd = ThreadingHTTPServer((bind, port), handler(directory))
    host, real_port = httpd.server_address[:2]
    print(f"serving {directory} at http://{host!s}:{real_port}/simple/", flush=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
