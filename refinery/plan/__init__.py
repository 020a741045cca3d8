"""Planning: requirement files, the resolver (uv), per-node decisions, graph, waves and
matrix. Pure: never builds.

- :mod:`~refinery.plan.inputs` reads requirement files (strictly, naming file:line);
- :mod:`~refinery.plan.resolver` pins them for the target (uv);
- :mod:`~refinery.plan.decide` decides each node (reused, cached, pending, missing,
  skipped_known_failure);
- :mod:`~refinery.plan.graph` adds build-dependency nodes, orders waves (cycles are an
  error) and shards the matrix;
- :mod:`~refinery.plan.planner` runs them in order (:func:`make_plan`);
- :mod:`~refinery.plan.report` renders a plan as Markdown for people.
"""

from refinery.plan.decide import Decider
from refinery.plan.graph import MAX_JOBS, CycleError, assign_waves, build_matrix, matrices_by_wave
from refinery.plan.inputs import RequirementSet, input_record, parse_files
from refinery.plan.planner import Planner, PlanOptions, make_plan
from refinery.plan.report import plan_markdown
from refinery.plan.resolver import Resolution, Resolver, UvResolver

__all__ = [
    "MAX_JOBS",
    "CycleError",
    "Decider",
    "PlanOptions",
    "Planner",
    "RequirementSet",
    "Resolution",
    "Resolver",
    "UvResolver",
    "assign_waves",
    "build_matrix",
    "input_record",
    "make_plan",
    "matrices_by_wave",
    "parse_files",
    "plan_markdown",
]
