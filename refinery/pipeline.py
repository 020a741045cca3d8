"""The whole pipeline in one call: requirement files → plan → builds → index → site.

DESIGN §2 as code, for one machine (``refinery run``). Each stage is the library call a
GitHub Actions job makes on its own; here they run in order on one store. The caller
(the CLI, or a test without click) assembles the parts from its configuration and
renders the events; nothing here reads the environment or prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from refinery.builder.fallback import Fallback
from refinery.builder.options import RunOptions
from refinery.builder.roots import BuildRoot
from refinery.builder.runner import OnEvent, RunSummary, build_plan
from refinery.core.clock import now
from refinery.core.errors import RefineryError
from refinery.core.models import InputStatus, Plan
from refinery.hints.advise import Advisor
from refinery.index import IndexResult, build_index
from refinery.plan import PlanOptions, Resolver, make_plan, parse_files
from refinery.plan.inputs import input_record
from refinery.site import SiteBuild, SiteOptions, build_site
from refinery.store import Store
from refinery.upstream.simple import IndexClient


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteTarget:
    """Where the status site is generated and built (mkdocs.yml, docs/, output)."""

    config_file: Path
    docs_dir: Path
    site_dir: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Parts:
    """The stage objects, assembled by the caller from its configuration."""

    store: Store
    index: IndexClient
    resolver: Resolver
    root: BuildRoot
    advisor: Advisor
    fallback: Fallback | None = None  # the emulated root behind a cross root (auto)


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineOptions:
    plan: PlanOptions
    run: RunOptions
    index_dir: Path
    site: SiteTarget | None = None  # None: no status site


@dataclass(frozen=True, slots=True)
class PipelineResult:
    plan: Plan
    builds: RunSummary
    index: IndexResult
    site: SiteBuild | None

    @property
    def simple(self) -> Path:
        """The pip index's ``simple/`` folder (what ``--index-url`` points at)."""
        return (Path(self.index.out) / "simple").absolute()


@dataclass(frozen=True, slots=True, kw_only=True)
class Observers:
    """What the caller wants to see while the pipeline runs (all optional)."""

    on_plan: Callable[[Plan], None] | None = None
    on_event: OnEvent | None = None
    on_built: Callable[[RunSummary], None] | None = None


def run_pipeline(
    requirements: Sequence[Path],
    parts: Parts,
    options: PipelineOptions,
    observers: Observers | None = None,
) -> PipelineResult:
    """Plan ``requirements``, build what is pending, render the index and the site.

    Input statuses are recorded as they change (planning → queued, or failed with the
    reason); a planning error is recorded, then raised.
    """
    seen = observers or Observers()
    plan = _plan(requirements, parts, options.plan)
    if seen.on_plan is not None:
        seen.on_plan(plan)
    builds = build_plan(
        plan,
        parts.store,
        parts.root,
        options.run,
        on_event=seen.on_event,
        advise=parts.advisor,
        first_fix=parts.advisor.first_fix,
        fallback=parts.fallback,
    )
    if seen.on_built is not None:
        seen.on_built(builds)
    index = build_index(parts.store, options.index_dir)
    site = _site(parts.store, options, index)
    return PipelineResult(plan, builds, index, site)


def record_inputs(
    store: Store,
    files: Sequence[Path],
    status: InputStatus,
    *,
    plan_id: str | None = None,
    reason: str = "",
) -> None:
    """Record ``status`` for every requirement file (the input status of DESIGN §4)."""
    for f in files:
        store.put_input(input_record(f, status, plan_id=plan_id, reason=reason, updated=now()))


def _plan(requirements: Sequence[Path], parts: Parts, options: PlanOptions) -> Plan:
    store = parts.store
    record_inputs(store, requirements, InputStatus.PLANNING)
    try:
        plan = make_plan(
            parse_files(list(requirements)),
            index=parts.index,
            resolver=parts.resolver,
            store=store,
            options=options,
        )
    except RefineryError as exc:
        record_inputs(store, requirements, InputStatus.FAILED, reason=str(exc))
        raise
    store.put_plan(plan)
    record_inputs(store, requirements, InputStatus.QUEUED, plan_id=plan.plan_id)
    return plan


def _site(store: Store, options: PipelineOptions, index: IndexResult) -> SiteBuild | None:
    target = options.site
    if target is None:
        return None
    pip_index = (Path(index.out) / "simple").absolute().as_uri() + "/"
    return build_site(
        store,
        docs_dir=target.docs_dir,
        site_dir=target.site_dir,
        config_file=target.config_file,
        options=SiteOptions(pip_index=pip_index),
    )
