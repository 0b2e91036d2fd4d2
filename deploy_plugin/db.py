"""The one way to connect to PostgreSQL (DESIGN §5), for the store and the migrations alike.

Every connection is in autocommit mode (transactions are explicit), names itself
``pytest-deploy``, times out connecting after 10 s, and asks the server to notice a dead
client within seconds: ``client_connection_check_interval=1s`` (a startup option, so it
survives ``RESET ALL``; dropped for servers before 14, which lack it) and TCP keepalives
(5 s idle, then every 2 s, 3 probes). A killed runner's backend thus ends, rolling back
and freeing its advisory lock, within about ten seconds.

Callers turn :class:`psycopg.Error` into their own one-paragraph messages.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

#: Added to every URL unless it sets them itself.
DEFAULTS = {
    "application_name": "pytest-deploy",
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
}
CHECK_INTERVAL_OPTION = "-c client_connection_check_interval=1s"


def connection_params(url: str) -> dict[str, Any]:
    """libpq parameters of ``url`` (``postgres+driver://`` accepted) with our defaults;
    raises psycopg.ProgrammingError for a malformed URL."""
    from psycopg.conninfo import conninfo_to_dict

    url = re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url)  # SQLAlchemy style
    params: dict[str, Any] = conninfo_to_dict(url)
    for key, value in DEFAULTS.items():
        params.setdefault(key, value)
    return params


def pg_connect(url: str, *, read_only: bool = False) -> psycopg.Connection[Any]:
    """An autocommit connection to ``url`` with the settings above (psycopg.Error if not).

    ``read_only``: every transaction of the session is READ ONLY (the server's
    ``default_transaction_read_only``, a startup option), so nothing sent on it can write:
    what a dry run uses to read a target's ledger."""
    import psycopg

    params = connection_params(url)
    own_options = str(params.get("options") or "")
    if read_only:
        own_options = f"{own_options} -c default_transaction_read_only=on".strip()
    params["options"] = f"{own_options} {CHECK_INTERVAL_OPTION}".strip()
    try:
        return psycopg.connect(autocommit=True, **params)
    except psycopg.OperationalError as exc:
        if "client_connection_check_interval" not in str(exc):
            raise
    params["options"] = own_options  # PostgreSQL before 14: keepalives only
    return psycopg.connect(autocommit=True, **params)
