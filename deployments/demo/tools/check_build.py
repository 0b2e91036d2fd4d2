"""Test: the build is complete and the packaged code works."""

import hashlib
import json
import subprocess
import sys

from common import out_dir

build = out_dir() / "build"
manifest = json.loads((build / "manifest.json").read_text())
for rel, digest in manifest.items():
    actual = hashlib.sha256((build / rel).read_bytes()).hexdigest()
    if actual != digest:
        sys.exit(f"{rel}: checksum mismatch")
out = subprocess.run(
    [sys.executable, "main.py"], cwd=build, capture_output=True, text=True, check=True
).stdout
if out.strip() != "hello, world":
    sys.exit(f"unexpected output: {out!r}")
print(f"checked {len(manifest)} files; main.py says {out.strip()!r}")
