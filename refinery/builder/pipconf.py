"""Carry the host's pip settings into a build root, where they make sense there.

The CLI reads the host's pip configuration files and ``PIP_*`` variables once
(:meth:`HostPip.read`, given ``os.environ``); the build step maps them for each session
with :meth:`HostPip.for_root`: keep what a pip inside a root can use (remote index URLs,
trusted hosts, timeouts, retries, proxies, and the CA bundle — mapped to the bundle
copied into the root); drop what points at host files (``file://`` indexes, local
find-links directories), saying so. Nothing here reads the environment by itself.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_URL_KEYS = ("index-url", "extra-index-url", "find-links")
_PLAIN_KEYS = ("trusted-host", "timeout", "default-timeout", "retries", "proxy")
_PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def config_files(environ: Mapping[str, str], home: Path) -> tuple[Path, ...]:
    """pip's configuration files in its own order of precedence (later wins).

    ``home`` is used when ``environ`` has no ``HOME``."""
    home = Path(environ.get("HOME", str(home)))
    xdg_dirs = environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs if d]
    files.append(Path("/etc/pip.conf"))
    files.append(home / ".pip" / "pip.conf")
    files.append(Path(environ.get("XDG_CONFIG_HOME", str(home / ".config"))) / "pip" / "pip.conf")
    if environ.get("VIRTUAL_ENV"):
        files.append(Path(environ["VIRTUAL_ENV"]) / "pip.conf")
    if environ.get("PIP_CONFIG_FILE") and environ["PIP_CONFIG_FILE"] != os.devnull:
        files.append(Path(environ["PIP_CONFIG_FILE"]))
    return tuple(files)


def host_settings(files: Sequence[Path], environ: Mapping[str, str]) -> dict[str, str]:
    """Effective host pip settings (``global``/``install`` sections, then ``PIP_*``)."""
    settings: dict[str, str] = {}
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (OSError, configparser.Error):
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                for key, value in parser.items(section):
                    settings[key.replace("_", "-")] = value.strip()
    for var, value in environ.items():
        if var.startswith("PIP_") and var != "PIP_CONFIG_FILE":
            settings[var[4:].lower().replace("_", "-")] = value
    return settings


@dataclass(frozen=True)
class RootPipConfig:
    env: tuple[tuple[str, str], ...]
    dropped: tuple[str, ...]  # human notes: what was not carried over and why


def _remote(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def for_root(
    settings: Mapping[str, str],
    *,
    environ: Mapping[str, str],
    ca_bundle: str | None = ROOT_CA_BUNDLE,
) -> RootPipConfig:
    """``PIP_*`` (and proxy) environment for pip inside a root, from host settings and
    the proxy variables of ``environ``."""
    out: dict[str, str] = {}
    dropped: list[str] = []
    for key in _URL_KEYS:
        if key not in settings:
            continue
        values = settings[key].split()
        kept = [v for v in values if _remote(v)]
        dropped += [
            f"{key} {v} (a host path, not visible in the root)" for v in values if not _remote(v)
        ]
        if kept:
            out[f"PIP_{key.upper().replace('-', '_')}"] = " ".join(kept)
    for key in _PLAIN_KEYS:
        if key in settings:
            out[f"PIP_{key.upper().replace('-', '_')}"] = settings[key]
    # A root carries the host's CA bundle (see rootfs_image; containers bind-mount it), so
    # a host `cert` setting maps to that bundle, whatever its host path. ``None``: the
    # commands run on the host itself and the setting applies as it is.
    if "cert" in settings:
        out["PIP_CERT"] = ca_bundle if ca_bundle is not None else settings["cert"]
    if "client-cert" in settings:
        dropped.append("client-cert (host key material is not copied into roots)")
    for var in _PROXY_VARS:
        if var in environ:
            out[var] = environ[var]
    return RootPipConfig(tuple(sorted(out.items())), tuple(dropped))


@dataclass(frozen=True)
class HostPip:
    """The host's pip settings and proxy variables, read once at the edge."""

    settings: tuple[tuple[str, str], ...] = ()
    proxies: tuple[tuple[str, str], ...] = ()

    @classmethod
    def read(cls, environ: Mapping[str, str], home: Path) -> HostPip:
        """Read pip's configuration files and ``PIP_*``/proxy variables of ``environ``."""
        settings = host_settings(config_files(environ, home), environ)
        proxies = {var: environ[var] for var in _PROXY_VARS if var in environ}
        return cls(tuple(sorted(settings.items())), tuple(sorted(proxies.items())))

    def for_root(self, ca_bundle: str | None = ROOT_CA_BUNDLE) -> RootPipConfig:
        """The environment for pip inside a session whose CA bundle is ``ca_bundle``."""
        return for_root(dict(self.settings), environ=dict(self.proxies), ca_bundle=ca_bundle)
