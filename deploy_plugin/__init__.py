"""pytest-deploy: declarative multi-part deployments run as a pytest session.

PYTEST_DONT_REWRITE: the plugin has no assertions for pytest to rewrite, and marking
it for rewriting would warn in every in-process pytester run of its own test suite.
"""

__version__ = "0.1.0"
