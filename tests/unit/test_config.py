"""refinery.toml: strict parsing, per-file targets, and the CLI reading it."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from refinery.core.config import ConfigError, Targets, parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_file_is_valid() -> None:
    cfg = parse_config(tomllib.loads((ROOT / "refinery.toml").read_text()))
    assert cfg.targets == Targets(("3.11",), "manylinux_2_28_s390x")
    assert cfg.backend == "container" and cfg.redispatch_budget == 2


def test_defaults_without_a_file() -> None:
    cfg = parse_config({})
    assert cfg.targets == Targets(("3.11",), "manylinux_2_28_s390x")
    assert cfg.hosted_runner == "ubuntu-24.04" and cfg.s390x_runner == ""


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"target": {}}, "unknown key 'target' in [top level] (did you mean 'targets'?)"),
        ({"targets": {"python": ["3.11"]}}, "(did you mean 'pythons'?)"),
        ({"targets": {"pythons": ["3.8"]}}, "'3.8' is not one of 3.9, 3.10"),
        ({"targets": {"pythons": "3.11"}}, "must be a list"),
        ({"targets": {"platform": "manylinux_2_12_s390x"}}, "N >= 17"),
        ({"targets": {"platform": "manylinux_2_28_x86_64"}}, "want manylinux_2_N_s390x"),
        ({"build": {"backend": "crosss"}}, "(did you mean 'cross'?)"),
        ({"build": {"redispatch-budget": -1}}, "0 … 10"),
        ({"runners": {"s390x": ""}}, "runner label"),
        ({"files": {"requirements/a.txt": {"pythons": ["2.7"]}}}, 'files."requirements/a.txt"'),
    ],
)
def test_strict_schema_names_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(doc)
    assert message in str(exc.value)


def test_per_file_overrides_and_the_union_of_pythons() -> None:
    cfg = parse_config(
        {
            "targets": {"pythons": ["3.11", "3.12"]},
            "files": {
                "requirements/legacy.txt": {"pythons": ["3.9"]},
                "requirements/new.txt": {"pythons": ["3.14"]},
                "requirements/old-glibc.txt": {"platform": "manylinux_2_17_s390x"},
            },
        }
    )
    assert cfg.targets_for(["requirements/legacy.txt"]) == Targets(("3.9",), "manylinux_2_28_s390x")
    assert cfg.targets_for(["./requirements/new.txt", "requirements/other.txt"]).pythons == (
        "3.11",
        "3.12",
        "3.14",
    )
    assert cfg.targets_for(["requirements/old-glibc.txt"]).pythons == ("3.11", "3.12")
    with pytest.raises(ConfigError, match="plan them separately"):
        cfg.targets_for(["requirements/old-glibc.txt", "requirements/new.txt"])


def test_the_cli_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from refinery.cli import main
    from refinery.cli.config import resolve_targets

    monkeypatch.chdir(tmp_path)
    (tmp_path / "refinery.toml").write_text(
        '[targets]\npythons = ["3.12"]\n[build]\nbackend = "native"\n'
        '[runners]\ns390x = "s390x-large"\n'
        '[files."requirements/a.txt"]\nplatform = "manylinux_2_34_s390x"\n'
    )
    assert resolve_targets([Path("requirements/a.txt")], (), None) == (
        ("3.12",),
        "manylinux_2_34_s390x",
    )
    assert resolve_targets([Path("requirements/b.txt")], ("3.9",), None) == (
        ("3.9",),
        "manylinux_2_28_s390x",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["config", "--github-output"], env={**os.environ, "GITHUB_OUTPUT": str(out)}
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["backend"] == "native"
    assert "runner=s390x-large\n" in out.read_text()
    (tmp_path / "refinery.toml").write_text('[build]\nbackend = "native"\n')
    failed = CliRunner().invoke(
        main, ["config", "--github-output"], env={**os.environ, "GITHUB_OUTPUT": str(out)}
    )
    assert failed.exit_code == 2 and "needs [runners] s390x" in failed.output
