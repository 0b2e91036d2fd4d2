"""Top-level conftest: the project's own test-suite settings."""
