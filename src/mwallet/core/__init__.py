"""The wallet's core: domain rules, use cases and their storage adapter. No door framework here."""
