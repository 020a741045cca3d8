"""``refinery build``, ``run`` and ``buildroot``: the build stage on the command line."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from refinery.cli.app import Decorator, Settings, _guard, main, options
from refinery.cli.plan import target_options
from refinery.core.errors import InputError
from refinery.core.models import Plan
from refinery.core.vocab import INSTALLERS, Installer

if TYPE_CHECKING:
    from refinery.builder.fallback import Fallback
    from refinery.builder.options import RootOptions, RunOptions
    from refinery.builder.roots import BuildRoot
    from refinery.builder.runner import RunSummary
    from refinery.cli.live import Renderer
    from refinery.cli.report import Report
    from refinery.hints.advise import Advisor
    from refinery.pipeline import Parts, PipelineOptions, PipelineResult, SiteTarget
    from refinery.store import Store


@dataclass(frozen=True, kw_only=True)
class BuildFlags:
    """The build options ``build`` and ``run`` share (``build`` adds ``nodes``, ``fixes``),
    as click parsed them."""

    jobs: int
    timeout: float
    max_attempts: int
    hints_dir: Path
    retry_backoff: float
    release: str | None
    image: str | None
    installer: Installer
    verbose: bool = False
    nodes: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
    network_isolation: bool | None = None  # None: refinery.toml's (default on)
    disk_quota: float | None = None  # GiB; None: refinery.toml's

    @classmethod
    def take(cls, given: dict[str, Any]) -> BuildFlags:
        """The flags of this class out of ``given`` (what is left stays there)."""
        return cls(**{f.name: given.pop(f.name) for f in fields(cls) if f.name in given})

    def root_options(self, settings: Settings, environ: Mapping[str, str]) -> RootOptions:
        from refinery.builder.options import RootOptions

        return RootOptions.from_environment(
            environ,
            cache=settings.cache_root,
            backend=settings.backend,
            release=self.release,
            image=self.image,
        )

    def root_and_advisor(self, settings: Settings) -> tuple[BuildRoot, Advisor]:
        """The build root for the settings' backend and the hint advisor for it."""
        from refinery.builder.roots import select_root
        from refinery.cli.parts import deriver_for, make_advisor

        root = select_root(self.root_options(settings, os.environ))
        advisor = make_advisor(
            self.hints_dir,
            root.backend,
            max_attempts=self.max_attempts,
            backoff=self.retry_backoff,
            forced=self.fixes,
            deriver=deriver_for(root, settings.cache_root),
            root=root,
        )
        return root, advisor

    def fallback(self, settings: Settings, root: BuildRoot, advisor: Advisor) -> Fallback | None:
        """``--backend auto`` that chose ``cross``: the emulated rootfs takes over a node
        whose cross build fails for a cross-specific reason, and builds the packages
        whose catalog entry says ``emulate`` from their first attempt. None otherwise
        (an explicitly chosen backend has no fallback)."""
        if settings.backend != "auto" or root.backend != "cross":
            return None
        from dataclasses import replace

        from refinery.builder.fallback import Fallback
        from refinery.builder.roots import select_root

        options = replace(self.root_options(settings, os.environ), backend="rootfs")
        catalog = advisor.catalog
        return Fallback(
            root=select_root(options),
            upfront=lambda node: catalog.emulate(node.name, node.python),
        )

    def renderer(self, report: Report, fallback: bool) -> Renderer:
        """How the build's events reach people (``fallback``: a node may get one more
        attempt, on the emulated root)."""
        from refinery.cli.report import renderer

        most = self.max_attempts + (1 if fallback else 0)
        return renderer(report, max_attempts=most, jobs=self.jobs, verbose=self.verbose)

    def limits(self) -> dict[str, Any]:
        """Network isolation and the disk watchdog: the flags, else refinery.toml."""
        from refinery.builder.isolation import GIB, DiskLimits
        from refinery.cli.config import read_config

        toml = read_config().limits
        quota = toml.disk_quota_gib if self.disk_quota is None else self.disk_quota
        disk = DiskLimits(quota=int(quota * GIB), min_free=int(toml.disk_min_free_gib * GIB))
        isolate = self.network_isolation
        return {
            "isolate_network": toml.network_isolation if isolate is None else isolate,
            "disk": disk if disk.quota or disk.min_free else None,
        }

    def run_options(self, settings: Settings, catalog_digest: str) -> RunOptions:
        """The runner's options; the host's pip settings are read here, once."""
        from refinery.builder.options import BuildOptions, RunOptions
        from refinery.builder.pipconf import HostPip
        from refinery.cli.test import catalog_or_none

        catalog = catalog_or_none(self.hints_dir)
        build = BuildOptions(
            cache=settings.cache_root,
            installer=self.installer,
            timeout=self.timeout,
            pip=HostPip.read(os.environ, Path.home()),
            packs=self.hints_dir.parent / "packs",  # library pack recipes beside the hints
            pack_store=settings.open_store().blobs,
            **self.limits(),
        )
        return RunOptions(
            build=build,
            jobs=self.jobs,
            max_attempts=self.max_attempts,
            only=self.nodes or None,
            catalog_digest=catalog_digest,
            # a package's own tests, after the smoke test, and what that test imports too
            tests=catalog.tests if catalog is not None else None,
            imports=catalog.imports if catalog is not None else None,
        )


def _run_builds(settings: Settings, result: Plan, flags: BuildFlags, plan_file: Path) -> int:
    from refinery.builder.runner import build_plan
    from refinery.cli.report import Report, expect, print_results

    root, advisor = flags.root_and_advisor(settings)
    store = settings.open_store()
    digest = advisor.catalog.digest if flags.hints_dir.is_dir() else result.catalog_digest
    fallback = flags.fallback(settings, root, advisor)
    report = Report(store=store, store_option=settings.store, plan=str(plan_file))
    render = flags.renderer(report, fallback is not None)
    expect(render, result, store, flags.nodes or None)
    try:
        summary = build_plan(
            result,
            store,
            root,
            flags.run_options(settings, digest),
            on_event=render,
            advise=advisor,
            first_fix=advisor.first_fix,
            fallback=fallback,
        )
    finally:
        render.finish()
    print_results(render, summary, report)
    return 0 if summary.ok else 1


build_options = options(
    click.option("--jobs", "-j", default=1, show_default=True, help="Builds in parallel."),
    click.option("--timeout", default=3600.0, show_default=True, help="Seconds per attempt."),
    click.option("--max-attempts", default=3, show_default=True, help="Attempts per node."),
    click.option(
        "--hints",
        "hints_dir",
        default=Path("hints"),
        show_default=True,
        type=click.Path(path_type=Path, file_okay=False),
        help="Hint catalog: fixes for failed attempts (and learned ones before the first).",
    ),
    click.option(
        "--retry-backoff",
        default=5.0,
        show_default=True,
        help="Seconds before the first retry; doubles for each further retry.",
    ),
    click.option("--release", default=None, help="Debian release of the rootfs backend."),
    click.option("--image", default=None, help="Container image (pinned by digest)."),
    click.option(
        "--installer",
        type=click.Choice(INSTALLERS),
        default="auto",
        show_default=True,
        help="What fills pypa/build's isolated environment (uv for s390x is ~3x faster).",
    ),
    click.option(
        "--network-isolation/--no-network-isolation",
        default=None,
        help="The PEP 517 build runs without a network once its requirements are fetched "
        "(default: refinery.toml's build.network-isolation, on).",
    ),
    click.option(
        "--disk-quota",
        type=float,
        default=None,
        metavar="GIB",
        help="What one build's folders may hold (default: refinery.toml's, 20; 0: no bound).",
    ),
    click.option(
        "--verbose",
        "-v",
        is_flag=True,
        help="Stream every build output line (default: a live view on a terminal, "
        "else one block per node).",
    ),
)


def _read_plan(plan_file: Path, nodes: Sequence[str]) -> Plan:
    """The plan in ``plan_file``; every ``--node`` must name one of its nodes."""
    try:
        doc = json.loads(plan_file.read_text())
        result = Plan.from_json(doc)
    except FileNotFoundError:
        raise InputError("plan file not found", path=str(plan_file)) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a JSON error has a line
        line = getattr(exc, "lineno", None)
        raise InputError(f"not a plan: {exc}", path=str(plan_file), line=line) from None
    for wanted in nodes:
        name = wanted.split("@")[0]
        if not any(n.key == wanted or f"{n.name}=={n.version}" == name for n in result.nodes):
            raise InputError(f"--node {wanted}: no such node in the plan", path=str(plan_file))
    return result


@main.command()
@click.argument("plan_file", metavar="PLAN.json", type=click.Path(path_type=Path))
@click.option("--node", "nodes", multiple=True, metavar="NAME==VER[@PY]", help="Only these.")
@click.option(
    "--fix",
    "fixes",
    multiple=True,
    metavar="HINT_ID",
    envvar="REFINERY_FIXES",
    help="Apply this hint's fix before the first attempt (a re-dispatch's fixes); repeat.",
)
@build_options
@click.pass_obj
@_guard
def build(settings: Settings, /, plan_file: Path, **given: Any) -> None:
    """Build the pending nodes of PLAN.json, wave by wave, into the store."""
    flags = BuildFlags.take(given)
    result = _read_plan(plan_file, flags.nodes)
    sys.exit(_run_builds(settings, result, flags, plan_file))


def _dir_option(flag: str, default: str, help: str) -> Decorator:
    return click.option(
        flag,
        type=click.Path(path_type=Path, file_okay=False),
        default=Path(default),
        show_default=True,
        help=help,
    )


@dataclass(frozen=True, kw_only=True)
class RunFlags:
    """The ``run`` command's own options (besides :class:`BuildFlags`)."""

    requirements: tuple[Path, ...]
    pythons: tuple[str, ...]
    platform: str | None
    refresh: bool
    index_dir: Path
    site_dir: Path
    no_site: bool
    build: BuildFlags = field(repr=False)

    def assemble(self, settings: Settings) -> tuple[Parts, PipelineOptions]:
        """The pipeline's parts and options, from these flags and the settings."""
        from refinery.cli import parts
        from refinery.cli.config import resolve_targets
        from refinery.hints import catalog_digest
        from refinery.pipeline import Parts, PipelineOptions
        from refinery.plan import PlanOptions

        root, advisor = self.build.root_and_advisor(settings)
        digest = catalog_digest(self.build.hints_dir)
        assembled = Parts(
            store=settings.open_store(),
            index=parts.index_client(settings, refresh=self.refresh),
            resolver=parts.resolver(settings, refresh=self.refresh),
            root=root,
            advisor=advisor,
            fallback=self.build.fallback(settings, root, advisor),
        )
        options = PipelineOptions(
            plan=PlanOptions(
                targets=parts.targets(
                    *resolve_targets(self.requirements, self.pythons, self.platform)
                ),
                catalog_digest=digest,
            ),
            run=self.build.run_options(settings, digest),
            index_dir=self.index_dir,
            site=self._site(),
        )
        return assembled, options

    def _site(self) -> SiteTarget | None:
        from refinery.pipeline import SiteTarget

        config, docs = Path("mkdocs.yml"), Path("docs")
        if self.no_site or not (config.is_file() and docs.is_dir()):
            return None
        return SiteTarget(config_file=config, docs_dir=docs, site_dir=self.site_dir)


@main.command()
@target_options
@_dir_option("--index-dir", "index", "Where the pip index of the store is rendered.")
@_dir_option(
    "--site-dir", "site", "Where the status site is built (needs mkdocs.yml and docs/ here)."
)
@click.option("--no-site", is_flag=True, help="Skip the status site.")
@build_options
@click.pass_obj
@_guard
def run(settings: Settings, /, **given: Any) -> None:
    """Plan, build, index and report REQUIREMENTS locally: wheels, logs and records go
    to the store (default ./.refinery/store), the pip index to --index-dir, the status
    site to --site-dir."""
    from refinery.pipeline import Observers, run_pipeline

    flags = RunFlags(build=BuildFlags.take(given), **given)
    parts, pipeline_options = flags.assemble(settings)
    view = _RunView(settings, parts.store, flags.build, parts.fallback is not None)
    observers = Observers(on_plan=view.plan, on_event=view.render, on_built=view.built)
    try:
        result = run_pipeline(flags.requirements, parts, pipeline_options, observers)
    finally:
        view.render.finish()
    _show_outputs(result, flags)
    sys.exit(0 if result.builds.ok else 1)


class _RunView:
    """``run`` on the screen: the plan, the builds (a renderer), the results."""

    def __init__(self, settings: Settings, store: Store, flags: BuildFlags, fallback: bool):
        from refinery.cli.report import Report

        self.store = store
        self.only = flags.nodes or None
        self.report = Report(store=store, store_option=settings.store, plan="")
        self.render = flags.renderer(self.report, fallback)

    def plan(self, plan: Plan) -> None:
        from dataclasses import replace

        from refinery.cli.render import make_console, plan_summary, plan_table
        from refinery.cli.report import expect

        console = make_console(stderr=True)
        console.print(plan_table(plan))
        console.print(plan_summary(plan))
        stored = self.store.plan_file(plan.plan_id)
        self.report = replace(self.report, plan=str(stored or ""), plan_id=plan.plan_id)
        expect(self.render, plan, self.store, self.only)

    def built(self, summary: RunSummary) -> None:
        from refinery.cli.report import print_results

        self.render.finish()
        print_results(self.render, summary, self.report)


def _show_outputs(result: PipelineResult, flags: RunFlags) -> None:
    """Where the pip index and the status site went, and how to use them."""
    from refinery.cli.render import make_console

    console = make_console(stderr=True)
    simple = result.simple
    console.print(
        f"index: {result.index.projects} projects, {result.index.files} files -> {simple}/\n"
        f"install on s390x: pip install --index-url {simple.as_uri()}/ NAME "
        f"(or serve it: refinery serve {flags.index_dir})",
        soft_wrap=True,
    )
    if result.site is not None:
        console.print(
            f"site: {result.site.packages} packages in {result.site.seconds:.1f}s -> "
            f"{(flags.site_dir / 'index.html').absolute()}",
            soft_wrap=True,
        )
    elif not flags.no_site:
        console.print("site: skipped (no mkdocs.yml and docs/ here; run from the repository)")


@main.group()
def buildroot() -> None:
    """Manage build roots (the Debian s390x root filesystem of the rootfs backend)."""


@buildroot.command("create")
@click.option("--release", default=None, help="Debian release [default: bookworm].")
@click.option("--force", is_flag=True, help="Create it again even when cached.")
@click.pass_obj
@_guard
def buildroot_create(settings: Settings, /, release: str | None, force: bool) -> None:
    """Create (or find cached) the s390x root filesystem; print its tarball path."""
    from rich.console import Console

    from refinery.builder import rootfs_image

    spec = rootfs_image.RootfsSpec(release=release or rootfs_image.DEFAULT_RELEASE)
    console = Console(stderr=True, highlight=False)
    cache = settings.cache_root.roots
    image = None if force else rootfs_image.cached(spec, cache)
    if image is None:
        console.print(f"creating {spec.key} with mmdebstrap (about 3 minutes)…")
        image = rootfs_image.create(
            spec, cache=cache, on_line=lambda line: console.print(line, markup=False)
        )
    print(image.tarball)
