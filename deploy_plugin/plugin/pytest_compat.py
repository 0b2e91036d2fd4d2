"""The places pytest-deploy reaches past pytest's public API, each in one function.

pytest offers no public way to do any of these; ``tests/test_pytest_compat.py`` fails when a
pytest release changes what these rely on.
"""

from __future__ import annotations

from typing import Any, NoReturn

import pytest


def skip_at_item(reason: str) -> NoReturn:
    """Skip the running item, reported at the item's own location (its group's line in
    the config, from ``reportinfo``), not at the line of this module that raised.

    Why private: ``pytest.skip()`` reports where it was called; pytest reports a skip at
    the item only for skip *marks*, through the ``_use_item_location`` argument of its
    skip exception (public as ``pytest.skip.Exception``), which is what this sets.
    """
    raise pytest.skip.Exception(reason, _use_item_location=True)


def junit_xml(config: pytest.Config) -> Any | None:
    """The running ``--junitxml`` writer (to add suite properties), or None.

    Why private: pytest exposes run-wide ``<properties>`` only through the
    ``record_testsuite_property`` fixture, which a plugin's session hooks can't request;
    the writer is found under ``_pytest.junitxml.xml_key`` in the config's stash.
    """
    # deferred: +7 modules, 4 ms (xml.etree.ElementTree, _pytest.junitxml, xml.etree.ElementPath, …)
    from _pytest.junitxml import xml_key

    return config.stash.get(xml_key, None)


def name_junit_testcase(config: pytest.Config, report: pytest.TestReport, name: str) -> None:
    """Give *report*'s JUnit ``<testcase>`` the ``name`` attribute *name* (its classname,
    and the node id everywhere else, stay as pytest makes them).

    Why private: the only public way is the ``record_xml_attribute`` fixture, which an
    item without fixtures can't request and which under xdist runs on a worker, where no
    JUnit writer is; this does what that fixture does, in the process that writes the XML:
    an attribute set on the writer's reporter of the test before it records a report
    wins over the one pytest derives from the node id. Called before the writer's own
    ``pytest_runtest_logreport``, and only for reports it makes a testcase of (so that no
    empty one is added).
    """
    xml = junit_xml(config)
    if xml is None or (report.passed and report.when != "call"):
        return
    xml.node_reporter(report).add_attribute("name", name)
