"""pre_deploy hook: remove the previous build."""

import shutil

from common import out_dir

shutil.rmtree(out_dir() / "build", ignore_errors=True)
print("cleaned", out_dir() / "build")
