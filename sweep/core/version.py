"""The package's version, in the lowest layer so that a manifest can name it without importing ``sweep``."""

__version__ = "0.1.0"
