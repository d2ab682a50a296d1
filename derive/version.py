"""The version of derive."""
__version__ = "0.1.0"
