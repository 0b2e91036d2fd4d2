"""Other pytest plugins that would bypass a deployment's safeguards, refused or tamed
(issue 20 #11).

* pytest-rerunfailures (``--reruns``, ``--force-reruns``, ini ``reruns``, a ``flaky``
  mark) runs a failed item again and reports the first failure as a "rerun": a failed
  step, which had already stopped its deployment, would then read as no failure at all
  (JUnit ``failures="0"``, the JSON report ``skipped``), and a step that changes a target
  must not run twice. Refused under ``--deploy-target`` (the options when pytest is
  configured, or a mark once items are collected: exit 4, pytest's usage error, as other
  bad input); plain tests of a session without a target may still be
  rerun.
* pytest-timeout's ``thread`` method ends the process with ``os._exit`` when an item
  times out: the step's commands keep running, the lock stays held and the run stays
  ``running``. Refused under ``--deploy-target``. Its ``signal`` method raises in the
  running step like Ctrl-C would: the step's process group is ended and the step fails
  with a paragraph saying what stopped it (:func:`stopped_message`).

Plugins are found through the plugin manager by their registered names and read through
their public options, ini values and marks only.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable

import pytest

#: The names pytest-rerunfailures, flaky and pytest-timeout register under.
RERUN_PLUGINS = ("rerunfailures", "flaky")
TIMEOUT_PLUGIN = "timeout"

_NOTHING_RUN = "Nothing was run."


def check_options(config: pytest.Config) -> None:
    """Refuse a run with a target under ``--reruns`` or pytest-timeout's thread method
    (pytest.UsageError: exit 4, one paragraph on stderr)."""
    rerun = _rerun_option(config)
    if rerun:
        raise pytest.UsageError(
            f"pytest-deploy: {rerun} (pytest-rerunfailures) would run a failed deployment"
            " step again and report the deployment's failure as a rerun (JUnit"
            ' failures="0", the deployment report "skipped"), and a step that changes a'
            " target runs once. Run the deployment without it (or with -p no:rerunfailures);"
            " rerun flaky plain tests in a session of their own, without --deploy-target."
            f" {_NOTHING_RUN}"
        )
    thread = _thread_timeout(config)
    if thread:
        raise pytest.UsageError(
            f"pytest-deploy: {thread} (pytest-timeout) ends the whole pytest process with"
            " os._exit when a step times out: the step's commands keep running, the"
            " deployment lock stays held and the run stays `running` in the store. Use"
            " --timeout-method=signal (a timed-out step then fails, its process group is"
            " ended and the deployment stops), or the group's timeout_seconds or"
            f" --deploy-timeout. {_NOTHING_RUN}"
        )


def mark_problems(config: pytest.Config, items: Iterable[pytest.Item]) -> list[str]:
    """One sentence per item of a deployment (step or smoke test) carrying a ``flaky``
    mark or a ``timeout`` mark of the thread method, when the plugin acting on it is
    active."""
    pm = config.pluginmanager
    reruns = any(pm.hasplugin(name) for name in RERUN_PLUGINS)
    timeout = pm.hasplugin(TIMEOUT_PLUGIN)
    problems = []
    for item in items:
        if reruns and item.get_closest_marker("flaky") is not None:
            problems.append(
                f"{item.nodeid} runs inside a deployment and is marked flaky: a rerun would"
                " hide the failure that already stopped the deployment; remove the mark."
            )
        mark = item.get_closest_marker("timeout") if timeout else None
        if mark is not None and _mark_method(config, mark) == "thread":
            problems.append(
                f"{item.nodeid} runs inside a deployment and its timeout mark uses the thread"
                " method, which ends pytest with os._exit and leaves the deployment running;"
                " use method='signal'."
            )
    return problems


def marks_refusal(problems: list[str]) -> str:
    """The run's refusal naming every marked item (exit 4, nothing run: found while
    collecting, like a rollback request that cannot be carried out)."""
    return "pytest-deploy: " + " ".join(problems) + f" {_NOTHING_RUN}"


def stopped_message(err: BaseException, what: str) -> str:
    """The failure of a step that another plugin stopped with ``pytest.fail`` while it ran
    (pytest-timeout's signal method): what stopped it and what became of its command."""
    text = " ".join(str(getattr(err, "msg", None) or err).split())
    by = ""
    if "pytest-timeout" in text:
        by = " (pytest-timeout's --timeout, ini timeout or timeout mark)"
    return (
        f"{what} was stopped while it ran{by}: {text} Any command it had started was ended"
        " with its process group (SIGTERM, then SIGKILL after 5 s); the deployment stops"
        " here and its later steps are not run."
    )


def _rerun_option(config: pytest.Config) -> str | None:
    """How reruns were asked for (``--reruns 2``, ``ini reruns = 2``), or None."""
    if not config.pluginmanager.hasplugin("rerunfailures"):
        return None
    for dest, flag in (("force_reruns", "--force-reruns"), ("reruns", "--reruns")):
        value = config.getoption(dest, None)
        if value:
            return f"{flag} {value}"
    try:
        ini = int(str(config.getini("reruns") or 0))
    except ValueError:
        return None  # pytest-rerunfailures ignores a value it cannot read
    return f"ini reruns = {ini}" if ini else None


def _thread_timeout(config: pytest.Config) -> str | None:
    """How pytest-timeout's thread method was chosen for the run's items, or None."""
    if not config.pluginmanager.hasplugin(TIMEOUT_PLUGIN):
        return None
    method = config.getoption("timeout_method", None)
    if method == "thread":
        return "--timeout-method=thread"
    if method is None and str(config.getini("timeout_method") or "") == "thread":
        return "ini timeout_method=thread"
    if method is None and not config.getini("timeout_method") and _default_method() == "thread":
        timeout = (
            config.getoption("timeout", None)
            or os.environ.get("PYTEST_TIMEOUT")
            or config.getini("timeout")
        )
        if timeout and float(timeout) > 0:
            return "--timeout (whose default method here, without SIGALRM, is thread)"
    return None


def _default_method() -> str:
    """pytest-timeout's default: signal where SIGALRM exists, else thread."""
    return "signal" if hasattr(signal, "SIGALRM") else "thread"


def _mark_method(config: pytest.Config, mark: pytest.Mark) -> str:
    """The method a ``timeout`` mark uses: its own, else the run's, else the default."""
    method = mark.kwargs.get("method")
    if method is None and len(mark.args) >= 2:
        method = mark.args[1]
    if method is None:
        method = config.getoption("timeout_method", None) or config.getini("timeout_method")
    return str(method or _default_method())
