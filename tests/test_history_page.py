"""The history page in a real browser: Debian's Chromium driven by Playwright.

Pages come from real deployments (pytest and ``pytest-deploy`` in subprocesses) and from
a store filled directly for scale. Each test checks what a person would (rows, statuses,
a selected deployment's steps, the migration filter, a config diff), that the page made
no request other than ``file://`` and logged no console error, and saves a screenshot in
its tmp_path. Without chromium the tests skip, except in CI (``CI`` set), where they fail.
Set ``HISTORY_PAGE_SCREENSHOT=docs/history-page.png`` and
``HISTORY_PAGE_SCREENSHOT_NARROW=docs/history-page-420.png`` to refresh the README's
pictures (1280 and 420 px wide).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy_plugin.store import open_store
from tests.history_site import browser_session, cli, deploy, deploy_history, fill_store


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from browser_session()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real deployments (local: v1 ok, v2 ok, a broken migration; qa: ok) and the
    CLI's page of them (all.html)."""
    root = tmp_path_factory.mktemp("page") / "shop"
    assert [run.returncode for run in deploy_history(root)] == [0, 0, 0, 1]
    result = cli(root, "history", "shop", "--html", "all.html")
    assert result.returncode == 0, result.stderr
    return root


class Visit:
    """A page opened from file://, with every request and console message it made."""

    def __init__(self, browser: Any, path: Path, shots: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.shots = shots
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.goto(path.resolve().as_uri())

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text}")

    def check(self, name: str) -> Path:
        """No console error, nothing but file://; a screenshot named ``name``."""
        shot = self.shots / f"{name}.png"
        self.page.screenshot(path=str(shot), full_page=True)
        assert self.errors == []
        assert self.requests and all(url.startswith("file://") for url in self.requests), (
            self.requests
        )
        return shot

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Any, tmp_path: Path) -> Iterator[Any]:
    opened: list[Visit] = []

    def open_page(path: Path) -> Visit:
        opened.append(Visit(browser, path, tmp_path))
        return opened[-1]

    yield open_page
    for item in opened:
        item.close()


def test_targets_table_shows_each_target_and_its_last_status(shop: Path, visit: Any) -> None:
    v = visit(shop / "all.html")
    table = v.page.locator("#targets-table")
    assert table.locator("thead th[scope=col]").count() == 12
    rows = table.locator("tbody tr")
    assert rows.count() == 2
    local, qa = rows.nth(0), rows.nth(1)
    assert local.locator("th[scope=row]").inner_text() == "local"
    assert "failure" in local.locator("td").nth(0).inner_text()
    assert "success" in qa.locator("td").nth(0).inner_text()
    # migrations: local applied 2, 003 failed (pending again); qa applied 2, 003 new
    assert local.locator("td").nth(5).inner_text() == "2"
    assert local.locator("td").nth(6).inner_text() == "1"
    assert local.locator("td").nth(7).inner_text() == "1"
    assert qa.locator("td").nth(6).inner_text() == "1"
    assert [h.inner_text() for h in v.page.locator("h2").all()] == [
        "What is deployed where", "Timeline", "Deployment detail", "Migration history", "Trends",
    ]  # fmt: skip
    shot = v.check("targets")
    if os.environ.get("HISTORY_PAGE_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["HISTORY_PAGE_SCREENSHOT"])


def test_selecting_a_deployment_shows_its_steps(shop: Path, visit: Any) -> None:
    v = visit(shop / "all.html")
    marks = v.page.locator('ol[aria-label="Deployments of local"] button.mark')
    assert marks.count() == 3
    assert marks.nth(2).get_attribute("aria-label").startswith("Run 4: failure")
    marks.nth(0).click()
    detail = v.page.locator("#detail")
    assert detail.locator("h3").inner_text() == "Run 1 → local: ✓ success"
    steps = detail.locator("#steps-table tbody tr")
    names = [steps.nth(i).locator("th").inner_text() for i in range(steps.count())]
    assert "migrations::deploy[migrations/001_items.sql]" in names
    assert "assets::deploy[assets/a3.txt]" in names and "build::build" in names
    assert detail.locator("svg.gantt rect").count() == steps.count()
    # the step's log tail (from .deploy/logs, masked as written)
    a0 = detail.locator("#steps-table tbody th").get_by_text("assets::deploy[assets/a0.txt]")
    tail = a0.locator("xpath=..").locator("pre.log").inner_text()
    assert tail == ("asset 0\ntoken=*** api=***")
    # the failing run: its failed step and its message
    marks.nth(2).click()
    failed = detail.locator("#steps-table tbody th").get_by_text(
        "migrations::deploy[migrations/003_broken.sql]", exact=True
    )
    row = failed.locator("xpath=..")
    assert row.locator("td").nth(1).inner_text() == "failed"
    assert "no such table: nowhere" in row.inner_text()
    assert "skipped" in detail.locator("#steps-table tbody tr").last.inner_text()
    assert marks.nth(2).get_attribute("aria-pressed") == "true"
    v.check("steps")


def test_parallel_steps_sit_side_by_side(shop: Path, visit: Any) -> None:
    v = visit(shop / "all.html")
    v.page.locator('button.mark[data-run="1"]').click()
    bars = v.page.locator("#detail svg.gantt rect")
    titles = [bars.nth(i).locator("title").text_content() for i in range(bars.count())]
    assets = [i for i, t in enumerate(titles) if t.startswith("assets::deploy[assets/")]
    assert len(assets) == 4
    # max_parallel: 3, and the first three waited for each other (their recorded intervals
    # overlap: tests/test_step_starts.py): three lanes, one row each
    lanes = {bars.nth(i).get_attribute("y") for i in assets[:3]}
    assert len(lanes) == 3, titles
    v.check("gantt")


def test_migration_filter_and_sort(shop: Path, visit: Any) -> None:
    v = visit(shop / "all.html")
    rows = v.page.locator("#migrations-table tbody tr")
    visible = v.page.locator("#migrations-table tbody tr:visible")
    assert rows.count() == 5
    v.page.fill("#mig-filter", "seed")
    assert visible.count() == 2
    assert v.page.locator("#mig-count").inner_text() == "2 rows"
    v.page.fill("#mig-filter", "")
    v.page.select_option("#mig-status", "failed")
    assert visible.count() == 1 and "003_broken.sql" in visible.first.inner_text()
    v.page.select_option("#mig-status", "")
    v.page.locator("#migrations-table th button", has_text="File").click()
    files = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(5)]
    assert files == sorted(files)
    assert v.page.locator("#migrations-table th", has_text="File").get_attribute("aria-sort") == (
        "ascending"
    )
    v.check("migrations")


def test_config_diff_shows_the_changed_line(shop: Path, visit: Any) -> None:
    v = visit(shop / "all.html")
    v.page.locator('button.mark[data-run="2"]').click()
    detail = v.page.locator("#detail")
    assert "Changes since run 1" in detail.inner_text()
    assert 'echo building v2 with $SHOP_TOKEN"' in detail.locator(".diff-add").inner_text()
    assert 'echo building v1 with $SHOP_TOKEN"' in detail.locator(".diff-del").inner_text()
    v.page.locator('button.mark[data-run="3"]').click()  # qa's first run
    assert "No earlier deployment of this target" in detail.inner_text()
    v.page.locator('button.mark[data-run="4"]').click()  # local, same config as run 2
    assert "Same config as run 2 (unchanged)." in detail.inner_text()
    v.page.locator("#detail summary").click()
    assert "project: shop" in detail.locator("pre.config").inner_text()
    v.check("diff")


def test_run_page_shows_this_run_among_its_history(shop: Path, visit: Any) -> None:
    result = deploy(shop, "qa", "--deploy-html=run.html")
    assert result.returncode == 1  # 003_broken.sql is there now
    v = visit(shop / "run.html")
    assert v.page.locator("#targets-table tbody tr").count() == 1
    this = v.page.locator("button.mark.this-run")
    assert this.count() == 1 and this.get_attribute("aria-pressed") == "true"
    assert "failure" in v.page.locator("#detail h3").inner_text()
    assert v.page.locator('ol[aria-label="Deployments of qa"] button.mark').count() == 2
    v.check("run")


def test_a_large_history_opens_and_summarises_older_runs(tmp_path: Path, visit: Any) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    store = open_store(None, tmp_path)
    fill_store(store, "big", targets=2, runs=230, steps=20)
    store.close()
    assert cli(tmp_path, "history", "big", "--html", "big.html").returncode == 0
    v = visit(tmp_path / "big.html")
    older = v.page.locator("p.older")
    assert older.count() == 2
    assert older.first.inner_text().startswith("30 older deployments")
    assert v.page.locator('ol[aria-label="Deployments of target-1"] button.mark').count() == 200
    v.page.locator('ol[aria-label="Deployments of target-0"] button.mark').last.click()
    assert v.page.locator("#steps-table tbody tr").count() == 20
    v.check("large")


def test_a_smoke_test_step_is_named_and_gantt_labels_carry_the_group(
    tmp_path: Path, visit: Any
) -> None:
    """A smoke test's node id is file::test (no config::target): its row is named by the
    test (before: an empty cell); a deployment step's label names its group."""
    from deploy_plugin.report.html import write_history_page
    from deploy_plugin.store import open_store

    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    store = open_store(None, tmp_path)
    assert store is not None
    run = store.start_deployment(
        "p", "t", who="dev", config_snapshot="project: p\n", config_sha256="0" * 64,
        dry_run=False,
    )  # fmt: skip
    store.record_steps(run, [
        {"node_id": "deploy.yaml::t::build::pre_deploy[0]", "group": "build",
         "kind": "pre_deploy", "file": None, "checksum": None, "command": "true",
         "outcome": "passed", "duration_ms": 5, "message": None},
        {"node_id": "smoke/test_site.py::test_home[t]", "group": None, "kind": "smoke",
         "file": None, "checksum": None, "command": None, "outcome": "failed",
         "duration_ms": 7, "message": "assert 500 == 200"},
    ])  # fmt: skip
    store.finish_deployment(run, "failure")
    write_history_page(store, "p", tmp_path / "p.html")
    store.close()
    v = visit(tmp_path / "p.html")
    v.page.locator(f'button.mark[data-run="{run}"]').click()
    names = v.page.locator("#steps-table tbody th[scope=row]").all_inner_texts()
    assert names == ["build::pre_deploy[0]", "test_home[t]"]
    labels = v.page.locator("#detail svg.gantt > text").all_text_contents()
    assert "build::pre_deploy[0]" in labels and "test_home[t]" in labels
    v.check("smoke-step")


# ---- the page at a phone's width and at a laptop's (issue 24 #5) -------------------------

WIDTHS = [420, 1280]


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A page of one target's runs of every kind: deployments (long step names, commands
    and messages), a rollback, a reversibility check and a run refused before anything ran
    (the newest, after the rollback: the rollback is the target's last)."""
    from datetime import datetime, timedelta, timezone

    from deploy_plugin.report.html import write_history_page

    root = tmp_path_factory.mktemp("kinds")
    (root / "pytest.ini").write_text("[pytest]\n")
    store = open_store(None, root)
    assert store is not None
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    runs = [("deploy", "success", 1200), ("deploy", "failure", 3400), ("deploy", "success", 2100),
            ("check_rollback", "success", 900), ("rollback", "success", 700),
            ("deploy", "refused", 0)]  # fmt: skip
    ended: dict[int, str] = {}
    for number, (kind, status, ms) in enumerate(runs):
        run = store.start_deployment(
            "ops", "production-eu-west", who="release-bot", config_snapshot="project: ops\n",
            config_sha256=f"{number:064x}", dry_run=False,
            started_at=start + timedelta(hours=number), kind=kind,
        )  # fmt: skip
        step_kind = {"deploy": "deploy", "rollback": "rollback"}.get(kind, "check_rollback")
        store.record_steps(run, [] if status == "refused" else [
            {"node_id": f"deploy.yaml::production-eu-west::migrations::{step_kind}"
                        f"[migrations/{s:03}_create_the_customer_accounts_table.sql]",
             "group": "migrations", "kind": step_kind,
             "file": f"migrations/{s:03}_create_the_customer_accounts_table.sql",
             "checksum": None,
             "command": f"psql --single-transaction -v ON_ERROR_STOP=1 -f migrations/{s:03}"
                        "_create_the_customer_accounts_table.sql postgresql://deploy:***@db/ops",
             "outcome": "failed" if status == "failure" and s == 2 else "passed",
             "duration_ms": ms // 3,
             "message": "ERROR: relation \"customer_accounts\" already exists\nCONTEXT: "
                        "statement 1" if status == "failure" and s == 2 else None}
            for s in range(3)
        ])  # fmt: skip
        store.finish_deployment(run, status)
        ended[run] = (start + timedelta(hours=number, milliseconds=ms)).isoformat(
            timespec="microseconds"
        )
    db = store.describe()  # its file: the store ends runs now, their durations are set here
    store.close()
    with sqlite3.connect(db) as connection:
        connection.executemany(
            "UPDATE deployments SET ended_at = ? WHERE id = ?", [(e, i) for i, e in ended.items()]
        )
    connection.close()
    store = open_store(None, root)
    assert store is not None
    write_history_page(store, "ops", root / "ops.html")
    store.close()
    return root


def _open(browser: Any, path: Path, width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(path.resolve().as_uri())
    return context, page


@pytest.mark.parametrize("width", WIDTHS)
def test_the_page_itself_never_scrolls_sideways(
    shop: Path, kinds: Path, browser: Any, width: int
) -> None:
    """Wide tables scroll inside their own box; the page is no wider than the window."""
    for path in (shop / "all.html", kinds / "ops.html"):
        context, page = _open(browser, path, width)
        try:
            narrow_shot = os.environ.get("HISTORY_PAGE_SCREENSHOT_NARROW")
            if narrow_shot and width == 420 and path.name == "all.html":
                page.screenshot(path=narrow_shot, full_page=True)
            for run in page.locator("button.mark").evaluate_all("bs => bs.map(b => b.dataset.run)"):
                page.locator(f'button.mark[data-run="{run}"]').click()
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= page.evaluate("window.innerWidth"), (path.name, run, wide)
        finally:
            context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_step_cells_hold_words_not_one_character_per_line(
    kinds: Path, browser: Any, width: int
) -> None:
    context, page = _open(browser, kinds / "ops.html", width)
    try:
        for run in (1, 3):  # the failed deployment (a message too), the check (long kind)
            page.locator("button.mark").nth(run).click()
            # each cell's text, its lines as laid out (distinct tops of its line boxes)
            cells = page.locator("#steps-table th, #steps-table td").evaluate_all("""cells =>
                cells.filter(c => c.innerText.trim().length >= 4).map(c => {
                    const range = document.createRange();
                    range.selectNodeContents(c);
                    const rects = Array.from(range.getClientRects());
                    const tops = new Set(rects.map(r => Math.round(r.top)));
                    const text = c.innerText.trim();
                    return [text.slice(0, 30), c.getBoundingClientRect().width,
                            Math.min(8, text.length / Math.max(1, tops.size))];
                })""")
            assert cells
            # 8 characters a line on average or the whole text on one line (one a line before),
            # 60 px wide at least
            narrow = [(text, w, per_line) for text, w, per_line in cells
                      if per_line < min(8, len(text)) or w < 60]  # fmt: skip
            assert narrow == []
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_gantt_labels_are_readable(shop: Path, browser: Any, width: int) -> None:
    """The label's size as drawn (its font size times the SVG's scale) is 10 px or more."""
    context, page = _open(browser, shop / "all.html", width)
    try:
        page.locator('button.mark[data-run="1"]').click()
        sizes = page.locator("#detail svg.gantt text").evaluate_all("""texts => texts.map(t =>
            parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a)""")
        assert sizes and min(sizes) >= 10, sizes
        labels = page.locator("#detail svg.gantt text").all_text_contents()
        assert "assets::deploy[assets/a0.txt]" in labels  # whole, not cut, at both widths
    finally:
        context.close()


def test_rollbacks_and_reversibility_checks_are_labelled(kinds: Path, browser: Any) -> None:
    context, page = _open(browser, kinds / "ops.html", 1280)
    try:
        marks = page.locator("button.mark")
        assert marks.count() == 6
        texts = [marks.nth(i).inner_text() for i in range(6)]
        labels = [marks.nth(i).get_attribute("aria-label") or "" for i in range(6)]
        assert "reversibility check" in labels[3] and "rollback" in labels[4]
        assert not any(word in labels[0] for word in ("rollback", "check"))
        # visible on the mark itself, not only to a screen reader
        assert texts[3] != texts[0] and texts[4] != texts[0] and texts[3] != texts[4]
        assert "⊘" in texts[5] and "refused" in labels[5]
        marks.nth(4).click()
        assert "rollback" in page.locator("#detail h3").inner_text()
        marks.nth(3).click()
        assert "reversibility check" in page.locator("#detail h3").inner_text()
        marks.nth(0).click()
        heading = page.locator("#detail h3").inner_text()
        assert "rollback" not in heading and "check" not in heading
        # the target's last run (the refused one changed nothing) was the rollback
        last = page.locator("#targets-table tbody tr").first.locator("td").first.inner_text()
        assert "rollback" in last and "success" in last
        page.screenshot(path=str(kinds / "kinds.png"), full_page=True)
    finally:
        context.close()


def test_a_refused_run_is_styled_like_an_interrupted_one(kinds: Path, browser: Any) -> None:
    context, page = _open(browser, kinds / "ops.html", 1280)
    try:
        colour = "b => getComputedStyle(b).backgroundColor"
        refused = page.locator("button.mark.status-refused").evaluate(colour)
        page.locator("button.mark").nth(5).click()
        span = page.locator("#detail h3 .status")
        assert "⊘ refused" in span.inner_text()
        assert span.evaluate("s => getComputedStyle(s).color") == "rgb(154, 103, 0)"  # --warn
        assert refused == "rgb(255, 248, 197)"  # interrupted's
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_trend_charts_have_axes_with_units(kinds: Path, browser: Any, width: int) -> None:
    context, page = _open(browser, kinds / "ops.html", width)
    try:
        figures = page.locator("#trends figure")
        assert figures.count() == 2
        duration = figures.nth(0).locator(".axis").all_inner_texts()
        rate = figures.nth(1).locator(".axis").all_inner_texts()
        # finished runs that say what the target has: 1.2 s, 3.4 s, 2.1 s, 0.9 s, 0.7 s
        assert "3.4 s" in duration and "700 ms" in duration, duration
        assert "100%" in rate and "0%" in rate, rate
        assert any("oldest" in t for t in duration) and any("newest" in t for t in duration)
        sizes = figures.locator(".axis").evaluate_all(
            "ts => ts.map(t => t.getBoundingClientRect().height && "
            "parseFloat(getComputedStyle(t).fontSize))"
        )
        assert min(sizes) >= 10, sizes
        if width == 420:
            page.screenshot(path=str(kinds / "narrow.png"), full_page=True)
    finally:
        context.close()


def test_the_gantt_chart_is_drawn_again_when_the_window_narrows(shop: Path, browser: Any) -> None:
    """A chart drawn at 1280 px, the window then narrowed to 420: it is drawn anew for the
    width shown (labels still 10 px or more), and the page does not scroll sideways."""
    context, page = _open(browser, shop / "all.html", 1280)
    try:
        page.locator('button.mark[data-run="1"]').click()
        assert page.locator("#detail svg.gantt").get_attribute("width") == str(
            page.evaluate("document.getElementById('detail').clientWidth")
        )
        page.set_viewport_size({"width": 420, "height": 900})
        page.wait_for_function(
            "Number(document.querySelector('#detail svg.gantt').getAttribute('width'))"
            " === document.getElementById('detail').clientWidth"
        )
        sizes = page.locator("#detail svg.gantt text").evaluate_all("""texts => texts.map(t =>
            parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a)""")
        assert min(sizes) >= 10, sizes
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 420
    finally:
        context.close()
