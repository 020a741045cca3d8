"""The ``refinery`` command: every stage, one process each, state in files.

Exit codes (DESIGN §5.1): 0 ok, 1 some builds failed, 2 bad input or configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from refinery.core.errors import InputError, RefineryError
from refinery.core.vocab import BACKEND_CHOICES

_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass
class Settings:
    store: str | None
    backend: str
    index_url: str
    cache_dir: Path | None


def _fail(exc: RefineryError) -> NoReturn:
    from refinery.cli.render import gha_escape, on_github_actions

    message = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    if on_github_actions() and isinstance(exc, InputError) and exc.path:
        line = f",line={exc.line}" if exc.line else ""
        print(
            f"::error file={gha_escape(exc.path, prop=True)}{line}::{gha_escape(exc.bare)}",
            file=sys.stderr,
        )
    print(f"refinery: error: {message}", file=sys.stderr)
    sys.exit(exc.exit_code)


def _guard(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn our errors into one line and an exit code; never a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except RefineryError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            print("refinery: interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    envvar="REFINERY_STORE",
    help="Store URL: a folder, file://PATH or s3://BUCKET/PREFIX [default: ./.refinery/store].",
)
@click.option(
    "--backend",
    type=click.Choice(BACKEND_CHOICES),
    default="auto",
    envvar="REFINERY_BACKEND",
    show_default=True,
    help="Build root.",
)
@click.option(
    "--index-url",
    envvar="REFINERY_INDEX_URL",
    default="https://pypi.org/simple/",
    show_default=True,
    help="Upstream simple index the planner reads.",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="REFINERY_CACHE",
    help="Cache for index pages, metadata and resolutions [default: ~/.cache/refinery].",
)
@click.version_option(package_name="wheel-refinery")
@click.pass_context
def main(
    ctx: click.Context, store: str | None, backend: str, index_url: str, cache_dir: Path | None
) -> None:
    """Wheel refinery: build the s390x wheels PyPI does not ship."""
    ctx.obj = Settings(store, backend, index_url, cache_dir)


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def options(*decorators: Decorator) -> Decorator:
    """Several click options as one decorator, applied in the order written."""

    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for decorate in reversed(decorators):
            fn = decorate(fn)
        return fn

    return apply
