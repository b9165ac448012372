"""Fault tests: real processes against project-local stores that the tests stop, kill
and pause (fixtures in conftest.py)."""
