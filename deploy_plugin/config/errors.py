"""A config's user-facing error: :class:`ConfigError`, one paragraph naming file, line, field."""

from __future__ import annotations

import re
from typing import Any


class ConfigError(Exception):
    """A user error in a config, rendered as one paragraph.

    Attributes: ``path`` (the file as shown to the user), ``line`` (1-based or None),
    ``field`` (e.g. ``'groups[2].order'``; None for the whole file), ``problem`` (the text
    after the location) and ``others`` (further problems found in the same file, each a
    ConfigError, for tools that list them all).
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str,
        line: int | None = None,
        field: str | None = None,
        others: tuple[ConfigError, ...] = (),
    ) -> None:
        self.problem = _one_paragraph(problem)
        self.path = path
        self.line = line
        self.field = field
        self.others = others
        super().__init__(self._render())

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only arguments: the default Exception pickling would lose them (xdist)
        return (_config_error, (self.problem, self.path, self.line, self.field, self.others))

    def _render(self) -> str:
        where = self.path if self.line is None else f"{self.path}, line {self.line}"
        text = (
            f"{where}: {self.field}: {self.problem}" if self.field else f"{where}: {self.problem}"
        )
        if self.others:
            more = len(self.others)
            text += f" ({more} more problem{'s' if more > 1 else ''} found after this one.)"
        return text

    def every_problem(self) -> str:
        """This problem and every other one found in the file, one paragraph each."""
        if not self.others:
            return str(self)
        first = ConfigError(self.problem, path=self.path, line=self.line, field=self.field)
        return "\n".join(str(e) for e in (first, *self.others))


def _config_error(
    problem: str, path: str, line: int | None, field: str | None, others: tuple[Any, ...]
) -> ConfigError:
    return ConfigError(problem, path=path, line=line, field=field, others=others)


def _one_paragraph(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _empty(shown: str) -> ConfigError:
    return ConfigError(
        "the file is empty. A config is a mapping with at least a `groups` list, each group "
        "with a `name` and an `order`.",
        path=shown,
    )
