"""``refinery publish``, ``index``, ``ingest`` and ``serve``: the store stage."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from refinery.cli.app import Decorator, Settings, _guard, main
from refinery.core.errors import InputError

if TYPE_CHECKING:
    pass

#: ``--json``: the command's result as one JSON document.
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def folder_option(*decls: str, default: str, help: str) -> Decorator:
    """An output folder option: a path (not a file), with a shown default."""
    return click.option(
        *decls,
        type=click.Path(path_type=Path, file_okay=False),
        default=Path(default),
        show_default=True,
        help=help,
    )


def _emit(doc: dict[str, Any], as_json: bool, line: str) -> None:
    print(json.dumps(doc, indent=1) if as_json else line)


@main.command()
@click.option(
    "--from",
    "source",
    required=True,
    metavar="STAGING",
    help="The staging store a build job wrote (a folder or URL).",
)
@json_option
@click.pass_obj
@_guard
def publish(settings: Settings, source: str, as_json: bool) -> None:
    """Copy wheels, metadata, logs, plans and records from STAGING into the store.

    Wheels and metadata first, records last (merged with compare-and-swap): the index,
    derived from records, never points at a wheel that is not there."""
    from refinery.store.publish import publish as run_publish

    staging = settings.open_store(source)
    target = settings.open_store()
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
@folder_option("-o", "--output", "out", default="index", help="Folder to render the index into.")
@click.option("--full", is_flag=True, help="Re-derive everything from the build records.")
@click.option("--upload", is_flag=True, help="Also put the pages into the store (bucket).")
@click.option(
    "--overlay-pypi",
    "overlay",
    is_flag=True,
    help="List PyPI's own files on each project page too (uv's first-index rule).",
)
@click.option("--upstream-url", default=None, help="Upstream index for --overlay-pypi.")
@json_option
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
    from refinery.index import build_index

    upstream = None
    if overlay:
        from refinery.upstream.simple import IndexClient

        url = upstream_url or settings.index_url
        upstream = IndexClient(url, cache_dir=settings.cache_root.index)
    store = settings.open_store()
    result = build_index(store, out, full=full, upload=upload, overlay=upstream)
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
@json_option
@click.pass_obj
@_guard
def ingest(settings: Settings, wheels: tuple[Path, ...], python: str, as_json: bool) -> None:
    """Validate existing WHEELS and add them to the store (all or nothing)."""
    from refinery.store.ingest import ingest as run_ingest

    results = run_ingest(settings.open_store(), list(wheels), python=python)
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

    from refinery.index import handler

    httpd = ThreadingHTTPServer((bind, port), handler(directory))
    host, real_port = httpd.server_address[:2]
    print(f"serving {directory} at http://{host!s}:{real_port}/simple/", flush=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
