"""Masking of secret values in free text (DESIGN §2, "masking").

Every secret value of 4 or more characters is replaced with ``***`` wherever it appears in
output, messages, commands, logs and reports, and so is the password part of any URL
(``scheme://user:PASSWORD@host``), known secret or not. Structural names (project, targets,
groups, env var names, file paths, the CLI's own words) are *kept*: a value equal to one is not
a secret (``env set`` warns about such values), and a shorter secret inside one never cuts it
(a stored ``prod`` leaves the target ``production`` readable).

This module imports nothing of ours.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"

#: Values shorter than this are not masked: masking "on" or "1" would garble every line.
MIN_SECRET_LENGTH = 4

_SECRET_NAME_PARTS = ("KEY", "SECRET", "TOKEN", "PASS")

# scheme://user:PASSWORD@host. The look-behind makes the scheme start at the beginning of a
# run of scheme characters, which keeps the scan linear on long runs of letters. The password
# stops at whitespace, "@" and characters that delimit URLs in text (quotes, angle brackets);
# it may contain "/" so that a wrongly unencoded password is still masked whole.
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.\-])"
    r"(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@\"'`<>]*:)"
    r"(?P<password>[^\s\"'`<>]+?)"  # to the "@" before the host (an unencoded "@" too)
    r"(?=@[^\s@/?#\"'`<>]*(?:[/?#\s\"'`<>]|$))"
)
# libpq's ``password=`` keyword, in a connection string or a URL's query
_PARAM_PASSWORD = re.compile(r"(?i)(?<![A-Za-z0-9_])(password=)[^&\s]*")
# A URL from its scheme up to where its user info could end; used to avoid cutting one.
_URL_START = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s@\"'`<>]*")


def redact_url(text: str) -> str:
    """*text* with every URL password (``user:PASSWORD@``, ``password=``) replaced by ``***``.

    The one redactor for URLs that are shown (store, database and health URLs).
    """
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group("prefix") + MASK, text)
    return _PARAM_PASSWORD.sub(lambda m: m.group(1) + MASK, text)


def is_secret_name(name: str) -> bool:
    """Return True when an env var *name* looks like it holds a secret.

    That is when it contains KEY, SECRET, TOKEN or PASS, in any case
    (``API_KEY``, ``db_password``, ``GithubToken``).
    """
    upper = name.upper()
    return any(part in upper for part in _SECRET_NAME_PARTS)


class Masker:
    """Replaces known secret values and URL passwords in text with :data:`MASK`.

    Secrets are matched longest first, so a secret that contains another is masked whole.
    A multi-line value is also registered line by line, so that output processed one line
    at a time still masks every line of it. The values never appear in ``repr``.

    A Masker is always truthy, even with no secrets: it still masks URL passwords.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._kept: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._dirty = False
        self.add(*secrets)

    def add(self, *values: str) -> None:
        """Register secret values; values shorter than 4 characters are ignored."""
        for value in values:
            candidates = {value, value.strip()}
            if "\n" in value or "\r" in value:
                candidates.update(line.strip() for line in value.splitlines())
            # a secret URL's password is a secret on its own too (a step may print it alone)
            candidates.update(m.group("password") for m in _URL_PASSWORD.finditer(value))
            candidates.update(re.findall(r"(?:^|\s)password=([^\s]+)", value))
            # as it appears inside a URL (a webhook's query, an error quoting a request)
            candidates |= {quote(c, safe="") for c in candidates} | set(map(quote_plus, candidates))
            for candidate in candidates - self._kept:
                if len(candidate) >= MIN_SECRET_LENGTH and candidate not in self._secrets:
                    self._secrets.add(candidate)
                    self._dirty = True

    def keep(self, *words: str) -> None:
        """Register structural words: never masked, and never registered as secrets.

        A secret equal to one is dropped (it is a name everybody sees); a secret inside one
        leaves it whole; a secret that *contains* one is still masked whole (longest first).
        """
        for word in words:
            if len(word) >= MIN_SECRET_LENGTH and word not in self._kept:
                self._kept.add(word)
                self._secrets.discard(word)
                self._dirty = True

    def mask(self, text: str) -> str:
        """Return *text* with every secret and every URL password replaced by ``***``."""
        pattern = self._secret_pattern()
        if pattern is not None:
            text = pattern.sub(self._replacement, text)
        return redact_url(text)

    def _replacement(self, match: re.Match[str]) -> str:
        word = match.group(0)
        return word if word in self._kept else MASK

    def safe_cut(self, text: str) -> int:
        """Return how much of *text*, a piece of a longer stream, can be masked now.

        Used to flush a very long line in pieces: the returned index never splits a secret
        or URL password that is in *text* or may continue past its end. Prefers to cut after
        whitespace (no URL contains any). Returns 0 when nothing can be flushed safely yet;
        a caller that must make progress anyway then flushes all of it.
        """
        cut = len(text) - max(self._longest() - 1, 0)
        space = max(text.rfind(char, 0, max(cut, 0)) for char in " \t\n\r\f\v")
        if space >= 0:
            cut = space + 1
        else:
            # No whitespace: a URL may run on past the end (or be cut inside its "://"), so
            # hold back from the start of a URL that reaches the cut.
            cut = min(cut, len(text) - 2)
            for match in _URL_START.finditer(text):
                if match.start() < cut <= match.end():
                    cut = match.start()
                    break
        pattern = self._secret_pattern()
        if pattern is not None:
            for match in pattern.finditer(text):
                if match.start() < cut < match.end() and match.group(0) not in self._kept:
                    cut = match.start()
                    break
        return max(cut, 0)

    def _longest(self) -> int:
        return max(map(len, self._secrets), default=0)

    def _secret_pattern(self) -> re.Pattern[str] | None:
        # Compiled once, and again only after add() changed the set of secrets.
        if self._dirty:
            # Kept words matter only where a secret falls inside one; longest first, so a
            # secret that contains a kept word still wins over it.
            lengths = sorted({len(s) for s in self._secrets})
            kept = {w for w in self._kept if self._holds_secret(w, lengths)}
            ordered = sorted(self._secrets | kept, key=lambda s: (-len(s), s))
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
            self._dirty = False
        return self._pattern

    def _holds_secret(self, word: str, lengths: list[int]) -> bool:
        """Whether a secret is a substring of ``word``: set look-ups of its substrings of
        each secret length (``lengths``, sorted), so the cost grows with the words, not
        words × secrets (a 100,000-line env file gives 100,000 of each)."""
        secrets = self._secrets
        for size in lengths:
            if size > len(word):
                return False
            if any(word[i : i + size] in secrets for i in range(len(word) - size + 1)):
                return True
        return False

    def __len__(self) -> int:
        """Number of registered secret values (lines of multi-line values included)."""
        return len(self._secrets)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<Masker: {len(self._secrets)} secret value(s)>"


def url_passwords(value: str) -> list[str]:
    """The passwords of the URLs in *value* (to be masked on their own, too)."""
    return [m.group("password") for m in _URL_PASSWORD.finditer(value)]


#: Loggers of the HTTP stack that write request URLs (query values included) at DEBUG.
HTTP_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager", "requests")


class MaskingFilter(logging.Filter):
    """A logging filter that masks a record's message (for ``--log-level=DEBUG`` runs,
    whose records reach the terminal, the log file and JUnit ``<system-err>``)."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.masker.mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True
