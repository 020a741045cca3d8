"""``refinery.toml`` at the edge: the file is read here, parsed by
:mod:`refinery.core.config`; ``refinery config`` shows it (and hands the workflows their
backend, runner labels and re-dispatch budget as job outputs)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from refinery.cli.app import _guard, main
from refinery.core.config import (
    CONFIG_FILE,
    ConfigError,
    RefineryConfig,
    load_config,
    parse_config,
)


def read_config(path: Path = Path(CONFIG_FILE)) -> RefineryConfig:
    """The configuration in ``path``; the defaults when there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return parse_config({})
    return load_config(data, str(path))


def resolve_targets(
    files: Sequence[Path], pythons: Sequence[str], platform: str | None
) -> tuple[tuple[str, ...], str]:
    """``--python``/``--platform`` as given, else what ``refinery.toml`` says for these
    requirement files (their overrides, else its defaults)."""
    if pythons and platform:
        return tuple(pythons), platform
    chosen = read_config().targets_for(f.as_posix() for f in files)
    return tuple(pythons) or chosen.pythons, platform or chosen.platform


@main.command("config")
@click.option(
    "--file", "path", type=click.Path(path_type=Path), default=Path(CONFIG_FILE), show_default=True
)
@click.option("--github-output", is_flag=True, help="backend=, runner=, … to $GITHUB_OUTPUT.")
@click.option(
    "--backend",
    "override",
    default="",
    help="A backend chosen elsewhere (a dispatch input, a repository variable) wins.",
)
@_guard
def config(path: Path, github_output: bool, override: str) -> None:
    """Check refinery.toml and show the targets and defaults it sets."""
    from dataclasses import replace

    cfg = read_config(path)
    if override:
        checked = parse_config({"build": {"backend": override}})  # the same check
        cfg = replace(cfg, backend=checked.backend)
    doc = {
        "pythons": list(cfg.targets.pythons),
        "platform": cfg.targets.platform,
        "backend": cfg.backend,
        "redispatch_budget": cfg.redispatch_budget,
        "hosted_runner": cfg.hosted_runner,
        "s390x_runner": cfg.s390x_runner,
        "files": {
            f: {"pythons": list(t.pythons), "platform": t.platform} for f, t in cfg.files.items()
        },
    }
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    if github_output:
        target = os.environ.get("GITHUB_OUTPUT")
        if not target:
            raise ConfigError("--github-output needs $GITHUB_OUTPUT (set by GitHub Actions)")
        runner = cfg.s390x_runner if cfg.backend == "native" else cfg.hosted_runner
        if not runner:
            raise ConfigError(f"{path}: the native backend needs [runners] s390x = LABEL")
        with open(target, "a", encoding="utf-8") as f:
            f.write(f"backend={cfg.backend}\nrunner={runner}\n")
            f.write(f"s390x_runner={cfg.s390x_runner}\nhosted_runner={cfg.hosted_runner}\n")
            f.write(f"redispatch_budget={cfg.redispatch_budget}\n")
