"""The command-line door: Typer commands that parse, call the wallet service, and render."""
