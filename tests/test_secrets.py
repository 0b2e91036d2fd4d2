"""Tests for deploy_plugin.secrets: masking of secret values and URL passwords."""

from __future__ import annotations

import random

import pytest

from deploy_plugin.secrets import MASK, Masker, is_secret_name


@pytest.mark.parametrize(
    "name",
    [
        "API_KEY",
        "api_key",
        "MONKEY_BUSINESS",
        "CLIENT_SECRET",
        "GithubToken",
        "DB_PASSWORD",
        "PASSPHRASE",
        "PGPASS",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["DATABASE_URL", "HOME", "PATH", "REGION", "USER", "K_E_Y"])
def test_non_secret_names(name: str) -> None:
    assert not is_secret_name(name)


def test_masks_every_occurrence() -> None:
    masker = Masker(["s3cr3t-value"])
    assert masker.mask("a s3cr3t-value b s3cr3t-values3cr3t-value") == "a *** b ******"


def test_ignores_values_shorter_than_four_characters() -> None:
    masker = Masker(["", "a", "on", "abc"])
    assert len(masker) == 0
    assert masker.mask("a on abc abcd") == "a on abc abcd"
    masker.add("abcd")
    assert masker.mask("a on abc abcd") == "a on abc ***"


def test_longest_secret_first() -> None:
    # "abcd" alone would leave "efgh" of the longer secret visible.
    masker = Masker(["abcd", "abcdefgh"])
    assert masker.mask("xx abcdefgh yy abcd") == "xx *** yy ***"


def test_regex_characters_are_literal() -> None:
    masker = Masker(["a.b*c+(d)|e", "[x]{2}\\1"])
    assert masker.mask("1 a.b*c+(d)|e 2 [x]{2}\\1 3 aXbbc") == "1 *** 2 *** 3 aXbbc"


def test_add_after_mask_takes_effect_and_pattern_is_reused() -> None:
    masker = Masker(["first-secret"])
    assert masker.mask("first-secret second-secret") == "*** second-secret"
    compiled = masker._secret_pattern()
    masker.mask("again")
    assert masker._secret_pattern() is compiled  # not recompiled without a change
    masker.add("second-secret")
    assert masker.mask("first-secret second-secret") == "*** ***"
    assert masker._secret_pattern() is not compiled
    masker.add("second-secret")  # already known: no recompilation
    assert masker._secret_pattern() is masker._secret_pattern()


def test_multi_line_secret_is_masked_line_by_line() -> None:
    pem = "-----BEGIN KEY-----\nAAAABBBBCCCC\nDDDDEEEEFFFF\n-----END KEY-----\n"
    masker = Masker([pem])
    assert masker.mask(pem) == MASK
    # Output processed one line at a time still hides every line of it.
    assert [masker.mask(line) for line in pem.splitlines()] == [MASK] * 4


def test_surrounding_whitespace_of_a_value_is_also_masked() -> None:
    masker = Masker(["  padded-secret\n"])
    assert masker.mask("value=padded-secret;") == "value=***;"


def test_repr_never_shows_values() -> None:
    masker = Masker(["hunter2-password"])
    assert "hunter2" not in repr(masker)
    assert "1" in repr(masker)


def test_masker_is_truthy_even_without_secrets() -> None:
    masker = Masker()
    assert masker and len(masker) == 0
    assert masker.mask("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgresql://app:hunter22@db.internal:5432/app",
            "postgresql://app:***@db.internal:5432/app",
        ),
        ("url=https://user:p%40ss@example.org/x done", "url=https://user:***@example.org/x done"),
        ("redis://:only-password@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("git+ssh://me:pw@host/repo.git", "git+ssh://me:***@host/repo.git"),
        (
            "'postgres://a:b@h' and \"mysql://c:d@h\"",
            "'postgres://a:***@h' and \"mysql://c:***@h\"",
        ),
        # An unencoded "/" in a password (a broken URL, as in an error message) is masked whole.
        ("postgresql://u:ab/cd@h/db", "postgresql://u:***@h/db"),
        # No password: nothing to mask.
        ("https://example.org:8080/path", "https://example.org:8080/path"),
        ("ssh://git@example.org/repo", "ssh://git@example.org/repo"),
        ("mailto:someone@example.org", "mailto:someone@example.org"),
        ("time 12:30@home", "time 12:30@home"),
    ],
)
def test_url_passwords_are_masked(text: str, expected: str) -> None:
    assert Masker().mask(text) == expected


def test_url_password_that_is_a_secret_and_url_that_is_a_secret() -> None:
    url = "postgresql://app:db-password@127.0.0.1/app"
    assert Masker(["db-password"]).mask(url) == "postgresql://app:***@127.0.0.1/app"
    assert Masker([url]).mask(f"DATABASE_URL={url}") == "DATABASE_URL=***"


def test_mask_is_idempotent() -> None:
    masker = Masker(["s3cr3t-value"])
    once = masker.mask("x s3cr3t-value postgresql://u:pw@h")
    assert masker.mask(once) == once


def test_url_scan_is_linear_on_long_runs_of_letters() -> None:
    # A naive scheme pattern retries at every letter of a long run: quadratic.
    text = "a" * 200_000 + "://u:pw@h " + "b" * 200_000
    assert Masker().mask(text) == "a" * 200_000 + "://u:***@h " + "b" * 200_000


def _mask_in_pieces(masker: Masker, text: str, piece_size: int) -> str:
    """Mask *text* as a stream reader does: arriving in pieces, flushed at safe_cut."""
    out, pending = [], ""
    for start in range(0, len(text), piece_size):
        pending += text[start : start + piece_size]
        cut = masker.safe_cut(pending)
        out.append(masker.mask(pending[:cut]))
        pending = pending[cut:]
    out.append(masker.mask(pending))
    return "".join(out)


@pytest.mark.parametrize("seed", range(20))
def test_safe_cut_never_splits_a_secret_or_url_password(seed: int) -> None:
    rng = random.Random(seed)
    secrets = ["s3cr3t-value-0123456789", "another secret with spaces", "tok_abcdef"]
    masker = Masker(secrets)
    words = [*secrets, "postgresql://app:pw-in-url@h/db", "x" * rng.randrange(1, 50), "y z"]
    text = "".join(rng.choice(words) + rng.choice(["", " ", ""]) for _ in range(300))
    streamed = _mask_in_pieces(masker, text, rng.randrange(5, 60))
    assert not any(secret in streamed for secret in secrets)
    assert "pw-in-url" not in streamed
    assert streamed == masker.mask(text)


def test_safe_cut_holds_back_what_may_be_the_start_of_a_secret_or_url() -> None:
    masker = Masker(["a-very-long-secret-value"])
    assert masker.safe_cut("x") == 0
    assert masker.safe_cut("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxa-very-long") == 51 - 23
    assert masker.safe_cut("done a-very-long-secret-value") == 5
    assert Masker().safe_cut("see postgresql://u:pw") == 4
    assert Masker().safe_cut("xxx=postgresql://u:pw") == 4


def test_the_password_of_a_secret_url_is_a_secret_on_its_own() -> None:
    """Found in review: a step printing only the password of a stored URL showed it."""
    masker = Masker(["postgresql://app:pwCanary77@db/x", "host=db password=kvCanary88 dbname=x"])
    assert masker.mask("SELECT 'pwCanary77'; kvCanary88") == "SELECT '***'; ***"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # an unencoded "@"
        ("postgresql://u:pa/ss@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("https://u:tok@h/p@x", "https://u:***@h/p@x"),
        ("postgresql://h/db?password=pw&x=1", "postgresql://h/db?password=***&x=1"),
        ("host=h password=pw dbname=d", "host=h password=*** dbname=d"),
    ],
)
def test_the_one_url_redactor(url: str, shown: str) -> None:
    from deploy_plugin.secrets import redact_url
    from deploy_plugin.store.errors import describe_url

    assert redact_url(url) == shown
    assert describe_url(url) == shown
