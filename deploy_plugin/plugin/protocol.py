"""The short item protocol: a deployment step is run and reported without pytest's
setup, call and teardown hooks when no one but pytest and pytest-deploy would see them
(issue 14).

pytest runs each item through three hooks (``pytest_runtest_setup``, ``_call``,
``_teardown``); pytest's own implementations capture output and log records around each
and set up fixtures. A step has no fixtures, runs only pytest-deploy's code, and gives
its command its own output pipes, so there is nothing to set up or capture; yet those
hooks cost more than a re-run's decision that a migration is applied, or than starting a
command. A step that takes the short protocol still gets the same three reports through
``pytest_runtest_makereport`` and ``pytest_runtest_logreport`` (terminal, JUnit, ``-rA``,
``--durations``, xdist, our recorder), between ``pytest_runtest_logstart`` and
``_logfinish``, inside every ``pytest_runtest_protocol`` wrapper (warnings are still
caught per item), and ``pytest_exception_interact`` (``--pdb``) for a failure, as
pytest's would. Log records emitted during such a step are not attached to its report
(pytest's log capture is one of the hooks left out); pytest-deploy's steps log nothing.

It is used only where leaving the three hooks out changes nothing anyone can see:

* no plugin or conftest but pytest's own and ours implements ``pytest_runtest_setup``,
  ``_call``, ``_teardown`` or (other than as a wrapper) ``pytest_runtest_protocol``, and
  none implements our per-step hooks (``pytest_deploy_before_step`` ...), whose code would
  run unseen by capture; no ``-x``/``--maxfail`` (the failing item's teardown then tears
  session fixtures down), ``--setup-only`` or ``--setup-show``: else every item gets
  pytest's protocol;
* the item says it may (:attr:`DeployItem.short_protocol`: steps, rollbacks and undos,
  not preflight checks or the health check), and carries no mark (a conftest's
  ``skip`` or ``xfail`` acts in pytest's setup and call hooks);
* the next item has the same parent, so the teardown would tear nothing down (pytest's
  setup state holds only collectors they share), and the item is not its deployment's
  last (whose teardown finishes the deployment).
"""

from __future__ import annotations

import bdb
import os
from types import ModuleType
from typing import Any

import pytest

_RUNTEST_HOOKS = ("pytest_runtest_setup", "pytest_runtest_call", "pytest_runtest_teardown")
_STEP_HOOKS = (
    "pytest_deploy_before_group",
    "pytest_deploy_before_step",
    "pytest_deploy_after_step",
    "pytest_deploy_after_group",
)


def _owner(plugin: Any) -> str:
    return plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__


def available(config: pytest.Config) -> bool:
    """Whether only pytest's own plugins and ours see items set up, run and torn down,
    and no one implements a per-step hook (asked once, when items run: every conftest is
    loaded by then)."""
    if config.getoption("setuponly", False) or config.getoption("setupshow", False):
        return False  # --setup-only runs no call; --setup-show prints each setup
    if config.getoption("maxfail", 0):
        return False  # -x: the failing item's teardown tears everything down (fixtures)
    for name in _STEP_HOOKS:
        if getattr(config.hook, name).get_hookimpls():
            return False
    for name in _RUNTEST_HOOKS:
        for impl in getattr(config.hook, name).get_hookimpls():
            if not _owner(impl.plugin).startswith(("_pytest.", "deploy_plugin.")):
                return False
    for impl in config.hook.pytest_runtest_protocol.get_hookimpls():
        # a wrapper wraps the short protocol too; another implementation would not run
        if not (impl.wrapper or impl.hookwrapper) and not _owner(impl.plugin).startswith(
            ("_pytest.", "deploy_plugin.")
        ):
            return False
    return True


def applies(item: pytest.Item, nextitem: pytest.Item | None) -> bool:
    """Whether ``item`` may take the short protocol (:func:`available` said yes)."""
    if not getattr(item, "short_protocol", False):
        return False
    if nextitem is None or nextitem.parent is not item.parent:
        return False  # its teardown would tear collectors down
    if next(item.iter_markers(), None) is not None:
        return False  # a mark (skip, xfail ... added by a conftest) acts in pytest's hooks
    selected = item.deployment.selected  # type: ignore[attr-defined]
    return not selected or selected[-1] is not item  # the last one finishes the deployment


def _nothing() -> None:
    return None


def run(item: pytest.Item) -> None:
    """Run and report ``item`` as pytest's protocol does, without its three hooks."""
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    reraise: tuple[type[BaseException], ...] = (pytest.exit.Exception,)
    if not item.config.getoption("usepdb", False):
        reraise += (KeyboardInterrupt,)  # as pytest: --pdb makes Ctrl-C a failure to inspect
    current = f"{item.nodeid} (".replace("\x00", "(null)")
    for when, func in (("setup", _nothing), ("call", item.runtest), ("teardown", _nothing)):
        os.environ["PYTEST_CURRENT_TEST"] = current + when + ")"  # as pytest sets it
        call = pytest.CallInfo.from_call(func, when=when, reraise=reraise)  # type: ignore[arg-type]
        report = ihook.pytest_runtest_makereport(item=item, call=call)
        ihook.pytest_runtest_logreport(report=report)
        if (
            call.excinfo is not None
            and not hasattr(report, "wasxfail")
            and not isinstance(call.excinfo.value, (pytest.skip.Exception, bdb.BdbQuit))
        ):
            ihook.pytest_exception_interact(node=item, call=call, report=report)
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
