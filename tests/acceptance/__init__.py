"""Acceptance tests: Hearth run only as a person runs it (console script, make, unit files)."""
