"""The package version, defined once (``lstm_madness.__version__`` re-exports it)."""

__version__ = "0.1.0"
