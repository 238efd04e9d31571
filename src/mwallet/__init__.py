"""mwallet: a terminal-first mobile wallet built on a double-entry ledger."""

__version__ = "0.1.0"
