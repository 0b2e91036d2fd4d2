"""psql safety (DESIGN §4): a step that runs psql stops at the first failing statement.

Without ``ON_ERROR_STOP`` ``psql -f FILE`` carries on past a failing statement and exits 0.
Two layers give it: a ``PSQLRC`` that first includes the user's own psqlrc, then sets it;
and, because ``psql -X`` skips every psqlrc, a ``psql`` first on PATH that passes
``-v ON_ERROR_STOP=1`` on the command line to the real one.

For a tracked migration's step that psql first on PATH also passes ``-1``
(``--single-transaction``), so a file failing on its second statement leaves nothing
committed, as under the built-in executor; and the psql invocation that runs the step's
file runs the file's ledger row first in that same transaction (:func:`ledger_env`), so
whether a file killed mid-way went through is what the target database says. Not covered:
a command that names psql by its path (``/usr/bin/psql``), a file marked
``-- deploy:no-transaction``, and other clients.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

#: A command runs the psql found on PATH (not one named by its path): the wrapper covers it.
_PSQL_ON_PATH = re.compile(r"(?<![\w/.-])psql(?![\w.-])")


def runs_psql_from_path(command: str) -> bool:
    """Whether ``command`` calls ``psql`` by name, so the wrapper first on PATH runs."""
    return bool(_PSQL_ON_PATH.search(command))


def psql_wrapped_env(
    env: Mapping[str, str], psqlrc_dir: Path, *, single_transaction: bool = False
) -> dict[str, str]:
    """Return a copy of *env* whose ``PSQLRC`` turns psql's ``ON_ERROR_STOP`` on.

    Without it ``psql -f FILE`` carries on past a failing statement and exits 0. The file
    written in *psqlrc_dir* first includes the user's own psqlrc (``$PSQLRC`` of *env*, else
    ``~/.psqlrc``) when it exists, so their settings still apply, then sets ON_ERROR_STOP,
    which therefore wins. Version-specific files (``~/.psqlrc-15``) are not included.
    ``single_transaction``: the psql first on PATH also passes ``-1``.
    """
    home = env.get("HOME") or str(Path.home())
    user_rc = env.get("PSQLRC") or os.path.join(home, ".psqlrc")
    if user_rc.startswith("~"):
        user_rc = home + user_rc[1:]
    psqlrc_dir.mkdir(parents=True, exist_ok=True)
    rc_path = psqlrc_dir / "psqlrc"
    lines = []
    # A PSQLRC that is already ours (a nested run) must not include itself.
    if os.path.isfile(user_rc) and os.path.abspath(user_rc) != os.path.abspath(rc_path):
        quoted = os.path.abspath(user_rc).replace("\\", "\\\\").replace("'", "''")
        lines.append(f"\\i '{quoted}'")
    lines.append("\\set ON_ERROR_STOP on")
    _write_atomically(rc_path, "\n".join(lines) + "\n")
    wrapped = {**env, "PSQLRC": str(rc_path)}
    # psql -X skips every psqlrc, ours included: a psql first on PATH passes the setting
    # on its command line too (a command naming /usr/bin/psql itself is not covered).
    bin_dir = psqlrc_dir / ("bin-1" if single_transaction else "bin")
    ours = {psqlrc_dir / "bin", psqlrc_dir / "bin-1"}
    search = os.pathsep.join(
        p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and Path(p) not in ours
    )
    real = shutil.which("psql", path=search)
    if real:
        bin_dir.mkdir(exist_ok=True)
        once = " -1" if single_transaction else ""
        _write_atomically(
            bin_dir / "psql",
            "#!/bin/sh\n# pytest-deploy: psql stops at the first failing statement, -X or not"
            + (", and runs a migration in one transaction\n" if once else "\n")
            + _PASSWORD_OFF_ARGV
            + (_LEDGER_FIRST.replace("REAL", shlex.quote(real)) if once else "")
            + f'exec {shlex.quote(real)} -v ON_ERROR_STOP=1{once} "$@"\n',
            mode=0o755,
        )
        wrapped["PATH"] = os.pathsep.join(filter(None, [str(bin_dir), search]))
    return wrapped


#: In both wrappers: the password of a ``postgres://`` or ``postgresql://`` URL argument
#: (alone, or after ``--dbname=``; the first one, which libpq reads) goes to psql as
#: PGPASSWORD, percent-decoded as libpq decodes it, and psql gets the URL without it: its
#: argument list is visible to every user of the machine (``ps``, /proc/PID/cmdline), its
#: environment to its owner only. An encoding libpq would refuse (``%zz``, ``%00``) is left
#: as written, for psql to refuse. Not covered: a ``password=`` in the URL's query or in a
#: ``key=value`` connection string.
_PASSWORD_OFF_ARGV = r"""_pd_decode() {
  _pd_in=$1 _pd_pw=
  while :; do
    case $_pd_in in *%*) ;; *) break ;; esac
    _pd_pw=$_pd_pw${_pd_in%%\%*} _pd_in=${_pd_in#*%}
    case $_pd_in in 00*) return 1 ;; [0-9A-Fa-f][0-9A-Fa-f]*) ;; *) return 1 ;; esac
    _pd_tail=${_pd_in#??}
    _pd_pw=$_pd_pw$(printf "\\$(printf %o "0x${_pd_in%"$_pd_tail"}")x") _pd_pw=${_pd_pw%x}
    _pd_in=$_pd_tail
  done
  _pd_pw=$_pd_pw$_pd_in
}
_pd_set=
for _pd_arg do
  shift
  case $_pd_arg in --dbname=*) _pd_pre=--dbname= ;; *) _pd_pre= ;; esac
  _pd_url=${_pd_arg#"$_pd_pre"}
  case $_pd_set$_pd_url in
    postgres://*|postgresql://*)
      _pd_rest=${_pd_url#*://}
      _pd_auth=${_pd_rest%%/*}
      case $_pd_auth in
        *@*)
          _pd_user=${_pd_auth%%@*}
          case $_pd_user in
            *:?*)
              if _pd_decode "${_pd_user#*:}"; then
                PGPASSWORD=$_pd_pw _pd_set=1
                export PGPASSWORD
                _pd_arg=$_pd_pre${_pd_url%%://*}://${_pd_user%%:*}@${_pd_rest#*@}
              fi ;;
          esac ;;
      esac ;;
  esac
  set -- "$@" "$_pd_arg"
done
"""

#: In the ``-1`` wrapper: the psql invocation that runs the step's migration file (named
#: as an argument, alone or after -f / --file=) runs the ledger row's SQL first, in the same
#: transaction (psql -1 wraps every -f in one BEGIN/COMMIT, in command-line order).
_LEDGER_FIRST = """\
if [ -n "${PYTEST_DEPLOY_LEDGER_SQL:-}" ]; then
  for arg in "$@"; do
    case "$arg" in
      "$PYTEST_DEPLOY_LEDGER_FILE"|"./$PYTEST_DEPLOY_LEDGER_FILE"|"$PYTEST_DEPLOY_LEDGER_PATH"|\
      -f"$PYTEST_DEPLOY_LEDGER_FILE"|-f"./$PYTEST_DEPLOY_LEDGER_FILE"|\
      -f"$PYTEST_DEPLOY_LEDGER_PATH"|--file="$PYTEST_DEPLOY_LEDGER_FILE"|\
      --file="./$PYTEST_DEPLOY_LEDGER_FILE"|--file="$PYTEST_DEPLOY_LEDGER_PATH")
        exec REAL -v ON_ERROR_STOP=1 -1 -f "$PYTEST_DEPLOY_LEDGER_SQL" "$@";;
    esac
  done
fi
"""


def ledger_env(psqlrc_dir: Path, *, root: Path, rel: str, sql: str) -> dict[str, str]:
    """Env vars under which the ``-1`` wrapper runs ``sql`` (the ledger row of migration
    ``rel``, see :func:`deploy_plugin.migrate.ledger.psql_guard_sql`) first in the psql
    invocation that runs ``rel``, so the row commits with the file or not at all."""
    folder = psqlrc_dir / "ledger"
    folder.mkdir(parents=True, exist_ok=True)
    # a name of its own (targets deploy in parallel under xdist); the step removes it after
    path = folder / f"{hashlib.sha256(sql.encode()).hexdigest()[:20]}.sql"
    _write_atomically(path, sql, mode=0o600)
    return {
        "PYTEST_DEPLOY_LEDGER_SQL": str(path),
        "PYTEST_DEPLOY_LEDGER_FILE": rel,
        "PYTEST_DEPLOY_LEDGER_PATH": str(root / rel),
    }


def _write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Write then rename: steps running in parallel may write the same file."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    temp.write_text(text, encoding="utf-8")
    temp.chmod(mode)
    os.replace(temp, path)


def drop_ledger_sql(env: Mapping[str, str]) -> None:
    """Remove the ledger SQL file :func:`ledger_env` wrote for one step (after it ran)."""
    path = env.get("PYTEST_DEPLOY_LEDGER_SQL")
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass  # already gone, or the folder is read-only: nothing is lost either way
