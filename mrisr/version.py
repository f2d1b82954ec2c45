"""The version of mrisr, in one place (the package metadata reads it from here)."""

__version__ = "0.4.0"
