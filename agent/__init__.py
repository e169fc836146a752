"""Veil: an on-device content filter."""

__version__ = "0.1.0"
