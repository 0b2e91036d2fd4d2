"""Deploy one function: copy its handler into the published functions folder."""

import shutil
import sys

from common import out_dir

name, handler = sys.argv[1], sys.argv[2]
target = out_dir() / "functions" / name
target.mkdir(parents=True, exist_ok=True)
shutil.copy2(handler, target / "handler.py")
print(f"published function {name} from {handler}")
