"""Library packs: libraries built for the target glibc (or taken from a PyPI wheel for
it), content-addressed, cached and stored, installed into a cross build's sysroot
below ``/opt/refinery-packs`` when a hint's fix names them.

:mod:`.recipes` loads ``packs/*.toml`` (strict); :mod:`.make` makes, caches and stores
the packs.
"""

from refinery.builder.packs.make import (
    Pack,
    PackFailed,
    PackMaker,
    PackTarget,
    ensure_packs,
    identity,
    vendor_into,
)
from refinery.builder.packs.recipes import (
    PACK_PREFIX,
    PackError,
    PackRecipe,
    load_recipe,
    load_recipes,
    stand_ins,
)

__all__ = [
    "PACK_PREFIX",
    "Pack",
    "PackError",
    "PackFailed",
    "PackMaker",
    "PackRecipe",
    "PackTarget",
    "ensure_packs",
    "identity",
    "load_recipe",
    "load_recipes",
    "stand_ins",
    "vendor_into",
]
