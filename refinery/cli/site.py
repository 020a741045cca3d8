"""``refinery site``: the status site (DESIGN §9) from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from refinery.cli.app import Settings, _guard, main
from refinery.cli.store import folder_option


def _logs(where: str) -> dict[str, Any]:
    """``--logs``: the SiteOptions fields it sets."""
    if where == "store":
        return {}
    if where == "copy":
        return {"copy_logs": True}
    if where.startswith(("https://", "http://")):
        return {"logs_url": where}
    raise click.BadParameter(f"{where!r}: give store, copy or an http(s) URL", param_hint="--logs")


@main.command()
@folder_option("-o", "--output", "site_dir", default="site", help="Where the built site goes.")
@folder_option(
    "--docs-dir",
    default="docs",
    help="MkDocs sources; status pages are generated into DOCS/status/.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="mkdocs.yml [default: the one beside the docs directory].",
)
@click.option(
    "--pip-index",
    envvar="REFINERY_PIP_INDEX",
    default="https://YOUR-INDEX/simple/",
    show_default=True,
    help="The served index users install from (shown in every pip command).",
)
@folder_option("--hints-dir", default="hints", help="The hint catalog (how often each fired).")
@click.option(
    "--logs",
    envvar="REFINERY_SITE_LOGS",
    default="store",
    show_default=True,
    metavar="store|copy|URL",
    help="Full logs: stay in the store (pages keep the excerpt and name `refinery logs`), "
    "are linked at URL (the store's public URL, its logs/ keys below it), or are copied "
    "into the site (small sites only: 10,000 packages outgrow GitHub Pages' 1 GB).",
)
@click.option("--full", is_flag=True, help="Regenerate and rebuild every page.")
@click.option("--markdown-only", is_flag=True, help="Write docs/status/ only; no MkDocs build.")
@click.pass_obj
@_guard
def site(
    settings: Settings,
    /,
    site_dir: Path,
    docs_dir: Path,
    config_file: Path | None,
    pip_index: str,
    hints_dir: Path,
    full: bool,
    markdown_only: bool,
    **given: str,
) -> None:
    """Generate the status pages from the store and build the site (mkdocs, strict).

    Incremental: only packages whose records changed are regenerated and re-rendered.
    """
    from rich.console import Console

    from refinery.site import SiteOptions, build_site

    config = config_file or docs_dir.resolve().parent / "mkdocs.yml"
    if not pip_index.endswith("/"):
        pip_index += "/"
    result = build_site(
        settings.open_store(),
        docs_dir=docs_dir,
        site_dir=None if markdown_only else site_dir,
        config_file=config,
        options=SiteOptions(pip_index=pip_index, hints_dir=hints_dir, **_logs(given["logs"])),
        full=full,
    )
    g = result.generated
    where = docs_dir / "status" if markdown_only else site_dir
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"site: {result.packages} packages, {len(g.written)} pages written, {g.unchanged} "
        f"unchanged, {len(g.removed)} removed, {result.logs_published} logs published; "
        f"{result.mode} build in {result.seconds:.1f}s (read {result.load_seconds:.1f}s, generate "
        f"{result.generate_seconds:.1f}s, mkdocs {result.mkdocs_seconds:.1f}s) → "
        f"{where}"
    )
