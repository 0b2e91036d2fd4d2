"""Fault harness (issue 9): kill -9, SIGTERM, database restarts and races, with counts.

    .venv/bin/python benchmarks/fault_harness.py [--kills 100] [--terms 20] [--restarts 5]
        [--races 100] [--orphans 20] [--files 8] [--seed N]

Each trial deploys a small project of short migrations (built-in executor, each one a
table, a row in ``fh_log`` and a little work) between two shell groups that write start
and end stamps, then does one harmful thing at a random moment:

* **kill -9** of the runner's whole process group, for every store x target combination
  (SQLite or PostgreSQL store; PostgreSQL target, the store's own database or another;
  SQLite target);
* **SIGTERM** to the runner alone (what CI cancellation sends);
* **a database restart** (``pg_ctl restart -m fast`` of a private cluster holding store
  and target; the shared server is never touched);
* **a race**: two runners started together;
* **kill -9 mid-step** (``--orphans``): the runner alone, or its whole process group (its
  guard too), while a step runs ``sleep 1000``; the next run starts at once. Its first
  step records any process of the killed run's steps still alive then (an overlap), and
  after it any such process still alive is an orphan. Each kill comes either the moment
  the step's bash has written its pid, or once the lock row records its process group.

After each trial it checks that every file's table exists if and only if the target's
ledger has its row; that after a clean re-run the history says applied exactly for the
tables that exist, every file is applied and ``fh_log`` holds each file once (nothing ran
twice); that no two deployments' stamp intervals overlapped; after SIGTERM that the step's
process is gone, the run is not left ``running`` and the lock is free. It prints the
counts. ``tests/test_fault_harness.py`` runs a few trials of each in the suite.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml

SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
WAIT_S = 60.0


@dataclass
class Counts:
    """What a batch of trials found."""

    trials: int = 0
    committed_at_kill: int = 0  # files whose commit landed while the runner died
    ledger_mismatch: int = 0  # a table without its ledger row, or the reverse
    history_mismatch: int = 0  # after the re-run: history and tables disagree
    ran_twice: int = 0  # fh_log holds a file more than once
    rerun_failed: int = 0
    overlaps: int = 0  # two deployments' stamp intervals overlapped
    left_running: int = 0  # a deployments row still "running" after its process ended
    orphans: int = 0  # a step process alive after its runner ended
    lock_left: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return (
            self.ledger_mismatch + self.history_mismatch + self.ran_twice + self.rerun_failed
            + self.overlaps + self.left_running + self.orphans + self.lock_left
        )  # fmt: skip

    def line(self, name: str) -> str:
        return (
            f"{name:<34} trials {self.trials:4d}  violations {self.violations}"
            f"  (ledger {self.ledger_mismatch}, history {self.history_mismatch}, twice"
            f" {self.ran_twice}, re-run failed {self.rerun_failed}, overlaps {self.overlaps},"
            f" left running {self.left_running}, orphans {self.orphans}, lock left"
            f" {self.lock_left}); commits that landed as the runner died:"
            f" {self.committed_at_kill}"
        )


# -------------------------------------------------------------------------- databases


class Server:
    """Throw-away databases on one PostgreSQL server (dropped WITH FORCE)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.made: list[str] = []

    def create(self) -> str:
        name = f"fh_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return f"{self.url}/{name}"

    def drop_all(self) -> None:
        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as admin:
            for name in self.made:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()


def _as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@contextmanager
def private_cluster() -> Iterator[tuple[str, Path]]:
    """A trust-auth cluster of our own on 127.0.0.1 (as the postgres user): (URL, data)."""
    import pwd
    import shutil
    import socket
    import tempfile

    owner = pwd.getpwnam("postgres")
    base = Path(tempfile.mkdtemp(prefix="fh-", dir="/tmp"))
    os.chown(base, owner.pw_uid, owner.pw_gid)
    data = base / "data"
    started = False
    try:
        init = _as_postgres(str(PG_BIN / "initdb"), "--auth=trust", "-U", "postgres",
                            "-D", str(data))  # fmt: skip
        if init.returncode != 0:
            raise SystemExit(f"initdb failed: {init.stderr}")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        start = _as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(data / "log"),
            "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "-w", "start",
        )  # fmt: skip
        if start.returncode != 0:
            raise SystemExit(f"pg_ctl start failed: {start.stderr}")
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}", data
    finally:
        if started:
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def restart(data: Path) -> None:
    done = _as_postgres(
        str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-m", "fast", "-w",
        "restart",
    )
    if done.returncode != 0:
        raise SystemExit(f"pg_ctl restart failed: {done.stderr}")


# -------------------------------------------------------------------------- the project


def pg_migration(i: int) -> str:
    return (
        f"CREATE TABLE fh_{i:03d} (id int);\nINSERT INTO fh_log VALUES ('{i:03d}');\n"
        "SELECT pg_sleep(0.02);\n"
    )


def sqlite_migration(i: int) -> str:
    work = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 30000)"
    return (
        f"CREATE TABLE fh_{i:03d} (id INTEGER);\nINSERT INTO fh_log VALUES ('{i:03d}');\n"
        f"{work} SELECT count(*) FROM c;\n"
    )


def make_project(root: Path, files: int, sqlite_target: bool, psql: bool = False) -> Path:
    """``root/proj`` with stamps, migrations and a step that writes its pid; ``psql``: the
    migrations are applied by ``psql "$DATABASE_URL" -f {file}`` (the seed's command)."""
    project = root / "proj"
    (project / "migrations").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    log = "CREATE TABLE fh_log (file TEXT);\n"
    make = sqlite_migration if sqlite_target else pg_migration
    (project / "migrations" / "000_log.sql").write_text(log)
    for i in range(1, files + 1):
        (project / "migrations" / f"{i:03d}_m.sql").write_text(make(i))
    stamp = 'echo "{word} $PPID $(date +%s.%N)" >> ../stamps.log'
    config = {
        "project": "fh",
        "targets": {"t": {}},
        "groups": [
            {"name": "begin", "order": 0, "deploy_command": stamp.format(word="start")},
            {"name": "migrations", "order": 1, "file_patterns": ["migrations/*.sql"],
             **({"deploy_command": 'psql "$DATABASE_URL" -q -f {file}'} if psql else {})},
            {"name": "work", "order": 2,
             "deploy_command": "echo $$ >> ../step.pids; sleep 0.2"},
            {"name": "end", "order": 3, "deploy_command": stamp.format(word="end")},
        ],
    }  # fmt: skip
    (project / "deploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project


@dataclass
class Setup:
    """One store x target combination: the runner's arguments and how to read the target."""

    name: str
    store: str | None  # None: the default SQLite store
    target: str  # the DATABASE_URL

    def args(self) -> list[str]:
        out = [f"--deploy-env=DATABASE_URL={self.target}"]
        return out + ([f"--deploy-store={self.store}"] if self.store else [])


def command(setup: Setup) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
            "--deploy-target=t", *setup.args()]  # fmt: skip


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "PG", "DEPLOY_")) and k != "DATABASE_URL"}  # fmt: skip


def start(project: Path, setup: Setup) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(setup), cwd=project, env=env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def run(project: Path, setup: Setup) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(setup), cwd=project, env=env(), stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip


# -------------------------------------------------------------------------- reading state


def target_state(setup: Setup, project: Path, files: int) -> tuple[set[str], set[str], list[str]]:
    """(tables that exist, files in the ledger, fh_log rows) of the target database."""
    names = {f"fh_{i:03d}" for i in range(1, files + 1)}
    if setup.target.startswith("sqlite"):
        path = project / setup.target.split(":///", 1)[1]
        if not path.exists():
            return set(), set(), []
        with sqlite3.connect(path) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            ledger = (
                {r[0] for r in conn.execute("SELECT file FROM pytest_deploy_applied")}
                if "pytest_deploy_applied" in tables
                else set()
            )
            log = ([r[0] for r in conn.execute("SELECT file FROM fh_log")]
                   if "fh_log" in tables else [])  # fmt: skip
    else:
        with psycopg.connect(setup.target, autocommit=True) as conn:
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
            ledger = set()
            if conn.execute("SELECT to_regclass('pytest_deploy.applied')").fetchone()[0]:
                ledger = {r[0] for r in conn.execute("SELECT file FROM pytest_deploy.applied")}
            log = ([r[0] for r in conn.execute("SELECT file FROM fh_log")]
                   if "fh_log" in tables else [])  # fmt: skip
    exist = {f"migrations/{t[3:]}_m.sql" for t in names & tables}
    ledger = {f for f in ledger if f != "migrations/000_log.sql"}
    return exist, ledger, log


def history(setup: Setup, project: Path) -> dict[str, str]:
    from deploy_plugin.store import open_store

    store = open_store(setup.store, project, create=False)
    if store is None:
        return {}
    try:
        return {f: r.status for f, r in store.applied_migrations("fh", "t").items()}
    finally:
        store.close()


def deployments(setup: Setup, project: Path) -> list[tuple[int, str]]:
    from deploy_plugin.store import open_store

    store = open_store(setup.store, project, create=False)
    if store is None:
        return []
    try:
        return [(d.id, d.status) for d in store.deployments("fh", "t", limit=None)]
    finally:
        store.close()


def lock_row(setup: Setup, project: Path) -> Any:
    from deploy_plugin.store import open_store

    store = open_store(setup.store, project, create=False)
    if store is None:
        return None
    try:
        return store.lock_info("fh", "t")
    finally:
        store.close()


def intervals(project: Path) -> list[tuple[float, float]]:
    """(start, end) of each deployment from its stamps; a killed one ends at +inf."""
    stamps = project.parent / "stamps.log"
    if not stamps.exists():
        return []
    open_: dict[str, float] = {}
    out = []
    for line in stamps.read_text().splitlines():
        word, pid, when = line.split()
        if word == "start":
            open_[pid] = float(when)
        elif pid in open_:  # "end", or "killed" written by the harness after a fault
            out.append((open_.pop(pid), float(when)))
    out += [(begun, float("inf")) for begun in open_.values()]
    return sorted(out)


def overlapping(spans: list[tuple[float, float]]) -> int:
    return sum(1 for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1])


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def mark_ended(tmp: Path, pid: int) -> None:
    """Close the interval of a run that ended by a fault (its processes are gone now)."""
    with open(tmp / "stamps.log", "a") as stamps:
        stamps.write(f"killed {pid} {time.time():.6f}\n")


def wait_gone(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + 10
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# -------------------------------------------------------------------------- checks


def check_after_fault(counts: Counts, setup: Setup, project: Path, files: int) -> None:
    exist, ledger, _ = target_state(setup, project, files)
    if exist != ledger:
        counts.ledger_mismatch += 1
        counts.notes.append(f"{setup.name}: tables {sorted(exist ^ ledger)} vs ledger")
    applied = {f for f, s in history(setup, project).items() if s == "success"}
    counts.committed_at_kill += len(exist - applied)


def check_after_rerun(counts: Counts, setup: Setup, project: Path, files: int) -> None:
    result = run(project, setup)
    if result.returncode != 0:
        counts.rerun_failed += 1
        output = (result.stdout + result.stderr)[-600:]
        counts.notes.append(f"{setup.name}: re-run failed (exit {result.returncode}): {output}")
        return
    exist, ledger, log = target_state(setup, project, files)
    applied = {f for f, s in history(setup, project).items() if s == "success"}
    applied.discard("migrations/000_log.sql")
    every = {f"migrations/{i:03d}_m.sql" for i in range(1, files + 1)}
    if not (exist == ledger == applied == every):
        counts.history_mismatch += 1
        counts.notes.append(f"{setup.name}: exist/ledger/history differ after re-run")
    if len(log) != len(set(log)) or len(log) != files:
        counts.ran_twice += 1
        counts.notes.append(f"{setup.name}: fh_log {sorted(log)}")
    counts.overlaps += overlapping(intervals(project))
    if any(status == "running" for _, status in deployments(setup, project)):
        counts.left_running += 1


# -------------------------------------------------------------------------- trials


def duration(setup: Setup, tmp: Path, files: int, sqlite_target: bool, psql: bool = False
             ) -> float:  # fmt: skip
    """How long one clean deployment takes (the range the random moments fall in)."""
    project = make_project(tmp / "calibrate", files, sqlite_target, psql)
    begun = time.monotonic()
    result = run(project, setup)
    if result.returncode != 0:
        raise SystemExit(f"calibration run failed:\n{result.stdout[-2000:]}")
    return time.monotonic() - begun


def kill_trial(counts: Counts, setup: Setup, tmp: Path, files: int, moment: float,
               sqlite_target: bool) -> None:  # fmt: skip
    project = make_project(tmp, files, sqlite_target)
    proc = start(project, setup)
    time.sleep(moment)  # the random moment itself: what a kill -9 is made of
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=WAIT_S)
    pids = [int(p) for p in (tmp / "step.pids").read_text().split()] if (
        tmp / "step.pids").exists() else []  # fmt: skip
    for pid in pids:  # the runner's whole group died, its guard too: bash is gone, this
        # only makes sure (a grandchild would be the re-run's takeover's to end)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_gone(pids)
    _wait_backends_gone(setup)
    mark_ended(tmp, proc.pid)
    counts.trials += 1
    check_after_fault(counts, setup, project, files)
    check_after_rerun(counts, setup, project, files)


def term_trial(counts: Counts, setup: Setup, tmp: Path, files: int, moment: float,
               psql: bool = False) -> None:  # fmt: skip
    """SIGTERM at ``moment`` (a CI cancellation); ``psql``: mid psql-applied files, whose
    intents the re-run must settle from the ledger with no repair by hand."""
    project = make_project(tmp, files, False, psql)
    proc = start(project, setup)
    time.sleep(moment)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=WAIT_S)
    pids = [int(p) for p in (tmp / "step.pids").read_text().split()] if (
        tmp / "step.pids").exists() else []  # fmt: skip
    counts.orphans += len(wait_gone(pids))
    mark_ended(tmp, proc.pid)
    counts.trials += 1
    if any(status == "running" for _, status in deployments(setup, project)):
        counts.left_running += 1
    if lock_row(setup, project) is not None:
        counts.lock_left += 1
    check_after_fault(counts, setup, project, files)
    check_after_rerun(counts, setup, project, files)


def restart_trial(counts: Counts, setup: Setup, data: Path, tmp: Path, files: int,
                  moment: float) -> None:  # fmt: skip
    project = make_project(tmp, files, False)
    proc = start(project, setup)
    time.sleep(moment)
    restart(data)
    proc.communicate(timeout=WAIT_S)
    mark_ended(tmp, proc.pid)
    counts.trials += 1
    check_after_fault(counts, setup, project, files)
    check_after_rerun(counts, setup, project, files)


ORPHAN_CHECK = (
    "for p in $(cat ../step.pids 2>/dev/null); do"
    ' awk -v g=$p \'$5 == g && $3 != "Z" {print "overlap " g}\' /proc/[0-9]*/stat'
    " 2>/dev/null >> ../overlaps.log; done; true"
)


def recorded(project: Path) -> bool:
    """Whether the SQLite store's lock row names a running step's process group."""
    path = project / ".deploy" / "state.sqlite3"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT step_groups FROM deploy_locks").fetchall()
    except sqlite3.Error:
        return False
    return any(value not in ("", "[]") for (value,) in rows)


def make_orphan_project(root: Path) -> Path:
    """A project whose first step checks that no step of an earlier run still runs, and
    whose second step holds (``sleep 1000``, bash forking it) while ``HOLD`` is set."""
    project = root / "proj"
    project.mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    config = {
        "project": "fh",
        "targets": {"t": {}},
        "groups": [
            {"name": "check", "order": 0, "deploy_command": ORPHAN_CHECK},
            {"name": "hold", "order": 1, "deploy_command":
             'if [ -n "$HOLD" ]; then echo $$ >> ../step.pids; sleep 1000; fi; true'},
        ],
    }  # fmt: skip
    (project / "deploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def group_alive(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                return True
    return False


def orphan_trial(counts: Counts, tmp: Path, whole_group: bool, after_record: bool) -> None:
    """kill -9 of a runner mid-step (alone, or with its whole process group: its guard
    too), then at once the next run: none of the killed run's step processes may still
    run when the next run's first step starts, nor after it."""
    project = make_orphan_project(tmp)
    proc = subprocess.Popen(
        [*command(Setup("o", None, "")), "--deploy-env=HOLD=1"], cwd=project, env=env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    pids_file = tmp / "step.pids"
    deadline = time.monotonic() + WAIT_S
    while not (pids_file.exists() and pids_file.read_text().strip()) or (
        after_record and not recorded(project)
    ):
        if time.monotonic() > deadline or proc.poll() is not None:
            counts.rerun_failed += 1
            counts.notes.append("orphans: the holding step never started")
            proc.kill()
            return
        time.sleep(0.01)
    pgids = [int(p) for p in pids_file.read_text().split()]
    if whole_group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=WAIT_S)
    counts.trials += 1
    second = subprocess.run(
        command(Setup("o", None, "")), cwd=project, env=env(), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if second.returncode != 0:
        counts.rerun_failed += 1
        counts.notes.append(f"orphans: next run failed: {second.stdout[-400:]}")
    overlaps = tmp / "overlaps.log"
    counts.overlaps += len(overlaps.read_text().splitlines()) if overlaps.exists() else 0
    left = [g for g in pgids if group_alive(g)]
    counts.orphans += len(left)
    for pgid in left:  # leave nothing behind for the next trial
        os.killpg(pgid, signal.SIGKILL)


def race_trial(counts: Counts, setup: Setup, tmp: Path, files: int) -> None:
    project = make_project(tmp, files, False)
    first, second = start(project, setup), start(project, setup)
    outputs = [p.communicate(timeout=WAIT_S)[0] for p in (first, second)]
    codes = [first.returncode, second.returncode]
    counts.trials += 1
    if 0 not in codes:
        counts.rerun_failed += 1
        counts.notes.append(f"race: neither passed: {outputs[0][-400:]} {outputs[1][-400:]}")
    for code, output in zip(codes, outputs, strict=True):
        if code != 0 and "held by" not in output:
            counts.notes.append(f"race: a loser failed otherwise: {output[-400:]}")
            counts.rerun_failed += 1
    counts.overlaps += overlapping(intervals(project))
    check_after_fault(counts, setup, project, files)
    check_after_rerun(counts, setup, project, files)


def _wait_backends_gone(setup: Setup) -> None:
    """A killed runner's backends (target and store, whose session holds the deployment
    lock) end by themselves once the server notices the closed sockets: wait for that."""
    for url in {setup.target, setup.store or ""}:
        if not url.startswith("postgresql"):
            continue
        server, name = url.rsplit("/", 1)
        deadline = time.monotonic() + WAIT_S
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            while time.monotonic() < deadline:
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
                ).fetchone()
                if row is not None and row[0] == 0:
                    break
                time.sleep(0.05)


# -------------------------------------------------------------------------- batches


def combinations() -> list[tuple[str, Any, bool]]:
    """Every store x target combination: (name, make(server) -> Setup, target is SQLite)."""
    lite = "sqlite:///target.sqlite3"

    def same(server: Server) -> Setup:
        url = server.create()
        return Setup("PostgreSQL store = target database", url, url)

    return [
        ("SQLite store, PostgreSQL target",
         lambda s: Setup("SQLite store, PostgreSQL target", None, s.create()), False),
        ("PostgreSQL store = target database", same, False),
        ("PostgreSQL store, another PG target",
         lambda s: Setup("PostgreSQL store, another PG target", s.create(), s.create()), False),
        ("SQLite store, SQLite target",
         lambda s: Setup("SQLite store, SQLite target", None, lite), True),
        ("PostgreSQL store, SQLite target",
         lambda s: Setup("PostgreSQL store, SQLite target", s.create(), lite), True),
    ]  # fmt: skip


def run_all(args: argparse.Namespace, tmp: Path) -> dict[str, Counts]:
    rng = random.Random(args.seed)
    server = Server(args.server)
    results: dict[str, Counts] = {}
    trial = 0

    def folder() -> Path:
        nonlocal trial
        trial += 1
        path = tmp / f"t{trial:04d}"
        path.mkdir()
        return path

    try:
        for name, make, sqlite_target in combinations():
            if not args.kills:
                break
            counts = results.setdefault(f"kill -9: {name}", Counts())
            span = duration(make(server), folder(), args.files, sqlite_target)
            for _ in range(args.kills):
                moment = rng.uniform(0, span)
                kill_trial(counts, make(server), folder(), args.files, moment, sqlite_target)
            server.drop_all()
        if args.terms:
            counts = results.setdefault("SIGTERM: SQLite store, PG target", Counts())
            span = duration(Setup("t", None, server.create()), folder(), args.files, False)
            for _ in range(args.terms):
                base = Setup("term", None, server.create())
                term_trial(counts, base, folder(), args.files, rng.uniform(0.2, span))
            server.drop_all()
        if args.psql_terms:
            counts = results.setdefault("SIGTERM mid psql-applied files", Counts())
            span = duration(Setup("t", None, server.create()), folder(), args.files, False, True)
            for _ in range(args.psql_terms):
                base = Setup("psql-term", None, server.create())
                term_trial(counts, base, folder(), args.files, rng.uniform(0.2, span), psql=True)
            server.drop_all()
        if args.races:
            counts = results.setdefault("races: PostgreSQL store = target", Counts())
            for _ in range(args.races):
                url = server.create()
                race_trial(counts, Setup("race", url, url), folder(), args.files)
            server.drop_all()
        if args.orphans:
            for after in (False, True):
                when = "once recorded" if after else "at step start"
                alone = results.setdefault(f"kill -9 runner {when}", Counts())
                whole = results.setdefault(f"kill -9 runner+guard {when}", Counts())
                for i in range(args.orphans):
                    orphan_trial(whole if i % 2 else alone, folder(), bool(i % 2), after)
        if args.restarts:
            counts = results.setdefault("database restarts (private cluster)", Counts())
            with private_cluster() as (url, data):
                private = Server(url)
                span = duration(Setup("r", *(2 * [private.create()])), folder(), args.files,
                                False)  # fmt: skip
                for _ in range(args.restarts):
                    db = private.create()
                    restart_trial(counts, Setup("restart", db, db), data, folder(), args.files,
                                  rng.uniform(0.3, span))  # fmt: skip
    finally:
        server.drop_all()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="per store x target")
    parser.add_argument("--terms", type=int, default=20)
    parser.add_argument("--psql-terms", type=int, default=10,
                        help="SIGTERM trials mid psql-applied migrations (issue 20 #8)")
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--races", type=int, default=100)
    parser.add_argument("--orphans", type=int, default=20, help="kill -9 mid-step trials")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--server", default=SERVER)
    args = parser.parse_args()
    import tempfile

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fault-harness-") as tmp:
        results = run_all(args, Path(tmp))
    for name, counts in results.items():
        print(counts.line(name))
        for note in counts.notes[:5]:
            print(f"    {note}")
    total = sum(c.violations for c in results.values())
    print(f"{sum(c.trials for c in results.values())} trials, {total} violations,"
          f" {time.monotonic() - began:.0f} s")  # fmt: skip
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
