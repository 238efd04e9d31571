"""One module per command group; `mwallet.cli.main` joins them."""
