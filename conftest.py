"""Top-level conftest: the project's own test-suite settings.

Config files kept as test data live under tests/data and must not be collected as
deployments of this repository.
"""

collect_ignore = ["tests/data"]
pytest_plugins = ["tests.httpserver"]
