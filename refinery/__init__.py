"""Wheel refinery: s390x wheels for what PyPI does not ship."""

__version__ = "0.1.0"
