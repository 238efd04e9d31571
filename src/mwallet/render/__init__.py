"""Documents that leave the wallet the same way through every door: the JSON (and CSV rows) of a
history page, a statement, usage statistics and the operators' reports, written once for the CLI
(`--json`, `--csv`) and the HTTP services. Amounts are decimal strings, times RFC 3339 UTC.

Pure functions of the core's results; no door framework (an import-linter contract says so).
"""
