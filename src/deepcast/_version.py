"""The package version, in a module of its own so saving can record it without importing
the package root (which imports everything)."""

__version__ = "0.1.0"
