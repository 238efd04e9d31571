"""The README's HTTP examples as a reader pastes them: each must be a request the server takes."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def curl_commands() -> list[str]:
    """Every `curl` command of the README's code blocks, its continued lines joined."""
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip().startswith("curl ")]


def test_a_json_body_in_a_curl_example_is_labelled_json() -> None:
    # `curl -d` labels its body application/x-www-form-urlencoded, which a JSON endpoint
    # refuses (415, `server/body.py`): the example must say the body is JSON.
    commands = curl_commands()
    with_json = [command for command in commands if re.search(r"-d '\{", command)]
    assert with_json, "the README shows JSON bodies sent with curl"
    for command in with_json:
        assert "Content-Type: application/json" in command or "--json" in command, command
