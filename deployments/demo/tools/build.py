"""Build: byte-compile every source file and copy it with a manifest of checksums."""

import hashlib
import json
import py_compile
import shutil
import sys
from pathlib import Path

from common import out_dir

src = Path(sys.argv[1])
build = out_dir() / "build"
manifest = {}
for path in sorted(src.rglob("*.py")):
    py_compile.compile(str(path), doraise=True)
    rel = path.relative_to(src)
    (build / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, build / rel)
    manifest[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
(build / "manifest.json").write_text(json.dumps(manifest, indent=2))
print(f"built {len(manifest)} files into {build}")
