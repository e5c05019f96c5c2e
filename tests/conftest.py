"""Shared pytest configuration: the repository root and tests/ are importable (see pyproject pythonpath)."""
