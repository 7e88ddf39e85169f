"""The library version (one place, read by the package and the results store)."""

__version__ = "0.1.0"
