"""The seed's Woofs project copied for a test, with recording stand-ins for the tools it
calls (npm, supabase, sudo, systemctl) so that nothing real is reached."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STANDIN = '#!/usr/bin/env bash\necho "$(basename "$0") $*" >> "$STANDIN_LOG"\n'
SUDO = '#!/usr/bin/env bash\necho "sudo $*" >> "$STANDIN_LOG"\nexec "$@"\n'
WOOFS_CALLS = [
    "npm run build",
    "npm test",
    "supabase functions deploy notify",
    "supabase functions deploy sync-snapshot",
    "sudo systemctl restart woofs-snapshot-sync",
    "systemctl restart woofs-snapshot-sync",
    "systemctl status woofs-snapshot-sync --no-pager",
]


def woofs_copy(home: Path) -> Path:
    """``home/woofs`` (the seed's config, unchanged), ``home/pytest.ini`` and ``home/bin``
    of stand-ins that append their command line to ``$STANDIN_LOG``; returns ``home/bin``."""
    shutil.copytree(REPO / "deployments" / "woofs", home / "woofs")
    (home / "pytest.ini").write_text("[pytest]\njunit_logging = system-out\n")
    bin_dir = home / "bin"
    bin_dir.mkdir()
    for name in ("npm", "supabase", "systemctl"):
        (bin_dir / name).write_text(STANDIN)
    (bin_dir / "sudo").write_text(SUDO)
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    Path("/tmp/deploy_working").mkdir(exist_ok=True)  # the seed's edge_functions cd there
    return bin_dir
