"""Bundled model files: data only (see models/README.md)."""
