"""The base of every deployment item (the stop policy, facts and outcome each shares) and
the health-check item. Group steps are :mod:`deploy_plugin.plugin.steps`, preflight checks
:mod:`deploy_plugin.plugin.preflight`; results are recorded by
:mod:`deploy_plugin.plugin.reporter`, which reads each item's :data:`STEP_OUTCOME`.

Every item does its work in the call phase and renders a short domain failure.
"""

from __future__ import annotations

import time
import warnings
from datetime import datetime
from typing import Any, NoReturn

import pytest

from deploy_plugin.engine.errors import DeployFailure, DeployWarning
from deploy_plugin.engine.policy import LOCK_LOST
from deploy_plugin.engine.views import StepView
from deploy_plugin.facts import monotonic_ms, utcnow
from deploy_plugin.plugin.deployment import Deployment
from deploy_plugin.plugin.messages import domain_name
from deploy_plugin.plugin.pytest_compat import skip_at_item
from deploy_plugin.plugin.session import DeploySession
from deploy_plugin.targets import expand_vars

#: What a step's call did: (outcome, masked message, duration in ms), for the reporter.
#: Set by every call that began, also one ended by Ctrl-C or ``pytest.exit``.
STEP_OUTCOME = pytest.StashKey[tuple[str, "str | None", int]]()


def skip(reason: str) -> NoReturn:
    """Skip the running item, reported at the item's location (not this module's)."""
    skip_at_item(reason)


# --------------------------------------------------------------------------- items


class DeployItem(pytest.Item):
    """Base of every item of a deployment: the stop policy, facts and results."""

    kind = "step"
    group_name: str | None = None
    file: str | None = None

    def __init__(self, *, deployment: Deployment, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deployment = deployment
        self.command: str | None = None  # masked, as reported
        self.checksum: str | None = None
        self.output: str = ""  # masked tail of the step's output
        self.log_path: Any = None
        self.notes: list[str] = []
        self.remark: str | None = None  # a passed step's message in the reports (masked)
        self.extra_facts: dict[str, str] = {}  # a check's own facts (lint findings)
        self.started_at: datetime | None = None  # when it began (its command, if it ran one)
        self.command_ms: int | None = None  # its command's own duration, when it ran one
        self.sort_key: tuple[int, int] = (0, 0)  # run order within the deployment
        deployment.items.append(self)

    # -- running

    def runtest(self) -> None:
        # deferred: +20 modules, 32 ms (store.records, store.driver, store.projects, …)
        from deploy_plugin.store.base import StoreError

        deployment = self.deployment
        hook = self.config.hook
        started = time.monotonic()
        self.started_at = utcnow()
        outcome, message = "passed", None
        group = deployment.config.group(self.group_name) if self.group_name else None
        try:
            deployment.start()
            blocker = deployment.blocker(self)
            if blocker:
                skip(f"not run: {blocker}" + ("" if blocker == LOCK_LOST else " failed"))
            if self.changes_something():
                deployment.check_lock()  # a step that only skips needs no lock round trip
            used = DeploySession.of(self.config).hook_used
            if group is not None and group.name not in deployment.groups_started:
                deployment.groups_started.add(group.name)
                if used("pytest_deploy_before_group"):
                    hook.pytest_deploy_before_group(deployment=deployment.view(), group=group)
            if used("pytest_deploy_before_step"):
                for step in self.deploy_steps():
                    hook.pytest_deploy_before_step(deployment=deployment.view(), step=step.view())
            self.execute()
            message = self.remark  # a passed step's own word for the reports, if any
        except pytest.skip.Exception as err:
            outcome, message = "skipped", str(err.msg)
            raise
        except (DeployFailure, StoreError) as err:
            outcome, message = "failed", deployment.masker.mask(str(err))
            blocking = getattr(err, "blocking", True)
            deployment.mark_failed(self, store_error=isinstance(err, StoreError), blocking=blocking)
            raise DeployFailure(message) from None
        except KeyboardInterrupt as err:
            why = str(err) or "interrupted (Ctrl-C)"
            outcome, message = "failed", deployment.masker.mask(why)
            deployment.interrupted = deployment.interrupted or why
            deployment.mark_failed(self)
            raise  # pytest makes no report of this call: see reporter.report_interrupted
        except pytest.fail.Exception as err:
            # another plugin stopped the step (pytest-timeout's signal method): a paragraph
            # deferred: +1 modules, 1 ms (plugin.guards)
            from deploy_plugin.plugin.guards import stopped_message

            outcome = "failed"
            message = deployment.masker.mask(stopped_message(err, domain_name(self)))
            deployment.mark_failed(self)
            raise DeployFailure(message) from None
        except BaseException as err:
            outcome, message = "failed", deployment.masker.mask(f"{type(err).__name__}: {err}")
            deployment.mark_failed(self)
            raise  # pytest.exit: no report either (see reporter.report_interrupted)
        finally:
            if self.command:
                # secrets and URL passwords, also for a step that never ran ("not run")
                self.command = deployment.masker.mask(self.command)
            # a command's own time goes with its own start (a parallel group's later items
            # only collect results their commands already have)
            elapsed = self.command_ms if self.command_ms is not None else monotonic_ms(started)
            self.stash[STEP_OUTCOME] = (outcome, message, elapsed)

    def deploy_steps(self) -> list[Any]:
        """The deployment's steps this item runs and reports, in run order: itself (an
        item may carry several: :class:`~deploy_plugin.plugin.applied.AppliedItem`)."""
        return [self]

    def step_outcomes(self) -> list[tuple[Any, tuple[str, str | None, int]]]:
        """Each of :meth:`deploy_steps` with its (outcome, masked message, duration in ms),
        once the call ran."""
        return [(self, self.stash[STEP_OUTCOME])]

    def view(self) -> StepView:
        """This step as hooks see it (read-only)."""
        return StepView(
            self.nodeid, self.name, self.group_name, self.kind, self.file,
            self.deployment.masker.mask(self.command) if self.command else None,
        )  # fmt: skip

    def execute(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def changes_something(self) -> bool:
        """False when this step will only report itself skipped (nothing to do)."""
        return True

    def facts(self, outcome: str) -> tuple[dict[str, str], str]:
        """The step's facts (for JUnit properties) and its report section's text."""
        facts = {
            "target": self.deployment.target.name,
            "group": self.group_name or "",
            "kind": self.kind,
            "file": self.file or "",
            "checksum": self.checksum or "",
            "command": self.command or "",
            "dry_run": str(self.deployment.dry_run).lower(),
            "outcome": outcome,
            **self.extra_facts,
        }
        lines = [f"{key}: {value}" for key, value in facts.items() if value]  # none empty
        lines += self.notes
        if self.log_path is not None:
            lines.append(f"log: {self.log_path}")
        if self.output:
            lines += ["--- output (masked, last 8 KiB) ---", self.output.rstrip("\n")]
        return facts, "\n".join(lines) + "\n"

    def repr_failure(  # a domain message (pytest accepts a str), not a TerminalRepr
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str:
        if isinstance(excinfo.value, DeployFailure):
            return self.deployment.masker.mask(str(excinfo.value))
        return self.deployment.masker.mask(str(super().repr_failure(excinfo)))

    def deploy_warning(self, text: str) -> None:
        """A :class:`DeployWarning` shown at this step's line of the config (not at the
        plugin's source line), also kept in the step's notes."""
        path, line, _ = self.reportinfo()
        warnings.warn_explicit(DeployWarning(text), DeployWarning, str(path), (line or 0) + 1)
        self.notes.append(f"warning: {text}")

    def reportinfo(self) -> tuple[Any, int | None, str]:
        # the group's (or health check's) line in the config: skips are reported there
        config = self.deployment.config
        group = config.group(self.group_name) if self.group_name else None
        line = group.line if group is not None else config.line_of(self.kind)
        return self.path, (line - 1 if line else 0), domain_name(self)


class HealthCheckItem(DeployItem):
    """``<target>::health_check``: poll the service until it answers as expected."""

    kind = "health_check"

    def execute(self) -> None:
        deployment = self.deployment
        check = deployment.config.health_check
        assert check is not None
        url = expand_vars(deployment.health_url() or check.url, deployment.env)
        self.command = deployment.masker.mask(f"GET {url} expecting {check.expected_status}")
        if deployment.dry_run:
            self.notes.append(
                f"dry run: would poll {deployment.masker.mask(url)} for {check.expected_status}"
            )
            return
        # deferred: +85 modules, 60 ms (urllib3.util.url, _ssl, ssl, …)
        from deploy_plugin.engine.health import poll_health  # requests: imported only when polling

        result = poll_health(url, check.expected_status, check.timeout_seconds)
        self.notes.append(deployment.masker.mask(result.describe()))
        if not result.ok:
            raise DeployFailure(deployment.masker.mask(result.describe()))
