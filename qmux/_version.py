"""The version of qmux: one place, read by the package, the build and every front door."""

__version__ = "0.1.0"
