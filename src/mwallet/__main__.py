"""`python -m mwallet` runs the CLI."""

from mwallet.cli.main import run

run()
