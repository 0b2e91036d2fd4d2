"""pytest-deploy: declarative multi-part deployments run as a pytest session."""

__version__ = "0.1.0"
