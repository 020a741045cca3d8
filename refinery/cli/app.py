"""The ``refinery`` command: every stage, one process each, state in files.

Exit codes (DESIGN §5.1): 0 ok, 1 some builds failed, 2 bad input or configuration.

The global options (``--store``, ``--backend``, ``--index-url``, ``--cache-dir``) are read
once, here, into one frozen :class:`Settings`. Users type them before the subcommand
(``refinery --store X ingest W``) or after it (``refinery ingest W --store X``): the
group attaches a copy of each to every subcommand it registers (:class:`RefineryGroup`),
and a value given after the subcommand replaces the one before it, the environment
variable and the default.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
from click.core import ParameterSource

from refinery.core.cache import CacheRoot
from refinery.core.errors import InputError, RefineryError
from refinery.core.vocab import BACKEND_CHOICES, BackendChoice
from refinery.store import S3Options, Store

_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """The global options, read once at the edge and handed to every command."""

    store: str | None
    backend: BackendChoice
    index_url: str
    cache_dir: Path | None
    #: The one cache root: ``--cache-dir``, else ``REFINERY_CACHE`` / XDG / ``~/.cache``.
    cache_root: CacheRoot
    #: How an S3 store retries (``REFINERY_S3_RETRIES``).
    s3: S3Options = field(default_factory=S3Options)
    #: A read-only store beneath ``--store`` (``REFINERY_STORE_BASE``): a GitHub build
    #: job reads earlier waves and its nodes' records there, and writes only ``--store``.
    store_base: str | None = None

    @classmethod
    def read(
        cls,
        *,
        store: str | None,
        backend: str,
        index_url: str,
        cache_dir: Path | None,
        environ: Mapping[str, str],
        home: Path,
    ) -> Settings:
        """Settings from the option values, with the cache root they imply."""
        return cls(
            store=store,
            backend=_backend(backend),
            index_url=index_url,
            cache_dir=cache_dir,
            cache_root=_cache_root(cache_dir, environ, home),
            s3=s3_options(environ),
            store_base=environ.get("REFINERY_STORE_BASE") or None,
        )

    def open_store(self, url: str | None = None) -> Store:
        """The store at ``url`` (default: ``--store``, over ``store_base`` if set), with
        this process's S3 options."""
        if url is None and self.store_base:
            from refinery.store.blobs import open_blobs
            from refinery.store.overlay import OverlayBlobStore

            upper = Store.open(self.store, s3=self.s3).blobs
            return Store(OverlayBlobStore(upper, open_blobs(self.store_base, s3=self.s3)))
        return Store.open(url or self.store, s3=self.s3)

    def given(self, name: str, value: Any) -> Settings:
        """These settings with one global option given again (after the subcommand)."""
        if name == "backend":
            return replace(self, backend=_backend(value))
        if name == "cache_dir":
            return replace(self, cache_dir=value, cache_root=CacheRoot(value))
        return replace(self, **{name: value})


def s3_options(environ: Mapping[str, str]) -> S3Options:
    """The S3 backend's options: ``REFINERY_S3_RETRIES`` (default 6)."""
    raw = environ.get("REFINERY_S3_RETRIES")
    if raw is None:
        return S3Options()
    try:
        return S3Options(retries=int(raw))
    except ValueError:
        raise InputError(f"REFINERY_S3_RETRIES={raw!r}: not a whole number") from None


def _backend(value: str) -> BackendChoice:
    if value not in BACKEND_CHOICES:
        raise ValueError(f"backend {value!r} is not one of {', '.join(BACKEND_CHOICES)}")
    return value


def _cache_root(cache_dir: Path | None, environ: Mapping[str, str], home: Path) -> CacheRoot:
    if cache_dir is not None:
        return CacheRoot(cache_dir)
    return CacheRoot.from_environment(environ, home)


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


# --- global options -------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class GlobalOption:
    """One option of the ``refinery`` group, accepted before and after the subcommand."""

    flag: str
    envvar: str
    help: str
    default: str | None = None
    type: click.ParamType[Any, Any] | None = None

    @property
    def name(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def on_group(self) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """The option on the group: environment variable and default apply here."""
        return click.option(
            self.flag,
            envvar=self.envvar,
            default=self.default,
            show_default=self.default is not None,
            type=self.type,
            help=self.help,
        )

    def on_command(self) -> click.Option:
        """The copy on a subcommand: no default, so only a value typed there counts."""
        default = f"; default: {self.default}" if self.default is not None else ""
        return click.Option(
            [self.flag],
            type=self.type,
            default=None,
            expose_value=False,
            callback=_given_after,
            help=f"{self.help} [global; env var: {self.envvar}{default}]",
        )


GLOBAL_OPTIONS = (
    GlobalOption(
        flag="--store",
        envvar="REFINERY_STORE",
        help="Store URL: a folder, file://PATH or s3://BUCKET/PREFIX [default: ./.refinery/store].",
    ),
    GlobalOption(
        flag="--backend",
        envvar="REFINERY_BACKEND",
        default="auto",
        type=click.Choice(BACKEND_CHOICES),
        help="Build root.",
    ),
    GlobalOption(
        flag="--index-url",
        envvar="REFINERY_INDEX_URL",
        default="https://pypi.org/simple/",
        help="Upstream simple index the planner reads.",
    ),
    GlobalOption(
        flag="--cache-dir",
        envvar="REFINERY_CACHE",
        type=click.Path(path_type=Path, file_okay=False),
        help="Cache for index pages, metadata, resolutions and build roots "
        "[default: $XDG_CACHE_HOME/refinery or ~/.cache/refinery].",
    ),
)


def _given_after(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A global option typed after a subcommand replaces its value in the settings that
    this command (and any command below it) receives."""
    if value is None or ctx.get_parameter_source(param.name or "") != ParameterSource.COMMANDLINE:
        return value
    settings = ctx.find_object(Settings)
    if settings is not None and param.name:
        ctx.obj = settings.given(param.name, value)
    return value


def with_global_options(command: click.Command) -> click.Command:
    """Attach the global options to ``command`` (and the commands of a group below it),
    except where the command has an option of that name or flag of its own: that wins."""
    names = {p.name for p in command.params}
    flags = {flag for p in command.params for flag in (*p.opts, *p.secondary_opts)}
    for option in GLOBAL_OPTIONS:
        if option.name not in names and option.flag not in flags:
            command.params.append(option.on_command())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_global_options(sub)
    return command


class RefineryGroup(click.Group):
    """A group whose subcommands (and sub-groups, recursively) accept the global options."""

    group_class = type

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(cmd, name)
        with_global_options(cmd)


def _global_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(GLOBAL_OPTIONS):
        fn = option.on_group()(fn)
    return fn


@click.group(cls=RefineryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@_global_options
@click.version_option(package_name="wheel-refinery")
@click.pass_context
def main(
    ctx: click.Context, store: str | None, backend: str, index_url: str, cache_dir: Path | None
) -> None:
    """Wheel refinery: build the s390x wheels PyPI does not ship.

    The global options may be given before or after the command.
    """
    ctx.obj = Settings.read(
        store=store,
        backend=backend,
        index_url=index_url,
        cache_dir=cache_dir,
        environ=os.environ,
        home=Path.home(),
    )


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def options(*decorators: Decorator) -> Decorator:
    """Several click options as one decorator, applied in the order written."""

    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for decorate in reversed(decorators):
            fn = decorate(fn)
        return fn

    return apply
