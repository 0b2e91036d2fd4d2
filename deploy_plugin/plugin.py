"""pytest hooks of pytest-deploy (being written)."""
