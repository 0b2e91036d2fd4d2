"""The history page as HTML: Jinja2 templates shipped in this package, CSS and script
inlined, charts as inline SVG, the deployments' data as JSON inside the page. Nothing
refers to a network address, so the file works offline from ``file://``."""

from __future__ import annotations

import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from statistics import median
from typing import Any

import jinja2
from markupsafe import Markup

from .model import KIND_LABELS, KIND_MARKS, STATUS_MARKS, PageData, Trend, duration_ms

CHART_WIDTH, CHART_HEIGHT = 600, 120


def _asset(name: str) -> Markup:
    text = (
        resources.files("deploy_plugin.report.html")
        .joinpath("templates")
        .joinpath(name)
        .read_text("utf-8")
    )
    return Markup(text)


def _json(data: Any) -> Markup:
    """JSON that cannot end its ``<script>`` element early."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _points(values: list[float], top: float, bottom: float = 0.0) -> str:
    """SVG polyline points of ``values`` scaled into the chart (oldest on the left),
    ``bottom`` at its foot and ``top`` at its head (all equal: a line across the middle)."""
    if not values:
        return ""
    if len(values) == 1:
        values = values * 2  # one run: a flat line across the chart
    step = CHART_WIDTH / max(1, len(values) - 1)
    span = top - bottom
    scale = (CHART_HEIGHT - 10) / span if span > 0 else 0

    def y(value: float) -> float:
        return CHART_HEIGHT - 5 - (value - bottom) * scale if span > 0 else CHART_HEIGHT / 2

    return " ".join(f"{i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))


def trend_charts(trend: Trend) -> dict[str, Any]:
    """What the trend charts of one target draw and say."""
    durations = trend.durations
    top, bottom = max(durations, default=0), min(durations, default=0)
    return {
        "duration_points": _points([float(d) for d in durations], float(top), float(bottom)),
        "duration_max": top,
        "duration_min": bottom,
        "duration_median": int(median(durations)) if durations else 0,
        "runs": len(durations),
        "rate_points": _points(trend.failure_rates, 1.0),
        "rate_last": round(trend.failure_rates[-1] * 100) if trend.failure_rates else None,
        "rate_max": round(max(trend.failure_rates, default=0.0) * 100),
        "window": trend.window,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
    }


def _duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("deploy_plugin.report.html", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["ms"] = _duration
    env.filters["unknown"] = lambda value: "unknown" if value is None else value
    env.globals.update(
        marks=STATUS_MARKS, kinds=KIND_LABELS, kind_marks=KIND_MARKS, duration_ms=duration_ms,
        trend_charts=trend_charts, css=_asset,
    )  # fmt: skip
    return env


def render_page(data: PageData) -> str:
    """The page's HTML."""
    template = _environment().get_template("page.html.j2")
    return template.render(
        page=data,
        payload=_json({**data.payload, "highlight": data.highlight}),
        style=_asset("page.css"),
        script=_asset("page.js"),
    )


def write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole (a temporary file renamed over it), its folders
    made if missing (as ``--junitxml`` and ``--deploy-report`` do): OSError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
