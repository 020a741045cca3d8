"""The status site: Markdown pages generated from the store, built with MkDocs.

``build_site`` is the whole stage; :mod:`.model` reads the store, :mod:`.generate`
renders pages (incrementally), :mod:`.plots` draws SVG charts, :mod:`.logs` picks and
highlights the failing lines of build logs. Depends on ``store`` and ``models`` only.
"""

from refinery.site.build import SiteBuild, SiteError, build_site, run_mkdocs
from refinery.site.generate import GenerateResult, Generator, SiteOptions
from refinery.site.model import SiteData, load

__all__ = [
    "GenerateResult",
    "Generator",
    "SiteBuild",
    "SiteData",
    "SiteError",
    "SiteOptions",
    "build_site",
    "load",
    "run_mkdocs",
]
