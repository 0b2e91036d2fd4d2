"""Shared paths of the demo's tools: everything lives in .out/<APP_ENV>."""

import os
from pathlib import Path


def out_dir() -> Path:
    path = Path(".out") / os.environ.get("APP_ENV", "local")
    path.mkdir(parents=True, exist_ok=True)
    return path
