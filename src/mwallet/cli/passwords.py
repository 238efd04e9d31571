"""Reading a password: a hidden prompt for people, or a line of stdin for scripts."""

from __future__ import annotations

import sys

import typer

from mwallet.cli.exit_codes import fail


def read_password(*, from_stdin: bool, confirm: bool, prompt: str = "Password") -> str:
    """One password: the next line of stdin with --password-stdin, else a hidden prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise fail(f"--password-stdin: no {prompt.lower()} on standard input")
        return password
    if not sys.stdin.isatty():
        raise fail("no terminal to ask for a password: use --password-stdin")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))
