"""post_deploy hook: list the published functions (fails when there are none)."""

import sys

from common import out_dir

names = sorted(p.name for p in (out_dir() / "functions").iterdir() if p.is_dir())
if not names:
    sys.exit("no function published")
print("functions:", ", ".join(names))
