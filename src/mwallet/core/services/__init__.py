"""Use cases: plain functions of a unit of work and keyword arguments."""
