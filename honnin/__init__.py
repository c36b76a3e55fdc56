"""Honnin: account registration with My Number Card identity verification."""

__version__ = "0.1.0"
