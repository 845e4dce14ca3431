"""Geometry for the MFA report's server-rendered SVG charts (no JavaScript, no chart library).

Each function returns plain numbers for a template; the template draws the SVG and prints every
number beside it, with an accessible table under each chart.
"""

from __future__ import annotations

from typing import Any

CIRCUMFERENCE = 100.0  # a circle of r=15.9155 has a circumference of 100: dash lengths are percentages


def donut(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Segments for stroke-dasharray donuts: each with its length and offset (in percent of the ring)."""
    total = sum(p["count"] for p in parts) or 1
    offset = 0.0
    out = []
    for p in parts:
        if not p["count"]:
            continue
        length = CIRCUMFERENCE * p["count"] / total
        out.append({**p, "length": round(length, 3), "gap": round(CIRCUMFERENCE - length, 3),
                    "offset": round(25.0 - offset, 3)})  # start at 12 o'clock
        offset += length
    return out


def bars(parts: list[dict[str, Any]], *, width: float = 260.0, row: int = 26) -> dict[str, Any]:
    top = max((p["count"] for p in parts), default=0) or 1
    items = [{**p, "y": n * row, "w": round(max(1.0, width * p["count"] / top), 1)} for n, p in enumerate(parts)]
    return {"items": items, "height": max(row, row * len(items)), "width": width}


def trend_lines(points: list[dict[str, Any]], *, width: float = 520.0, height: float = 160.0,
                pad: float = 30.0) -> dict[str, Any]:
    """Two polylines (capable %, interrupted %) over the snapshots, oldest left."""
    n = len(points)
    step = (width - 2 * pad) / (n - 1) if n > 1 else 0.0

    def xy(i: int, pct: float) -> tuple[float, float]:
        x = pad + i * step if n > 1 else width / 2
        return round(x, 1), round(height - pad - (height - 2 * pad) * pct / 100.0, 1)

    capable = [xy(i, p["capable_pct"]) for i, p in enumerate(points)]
    interrupted = [xy(i, p["interrupted_pct"]) for i, p in enumerate(points)]
    return {
        "width": width, "height": height, "pad": pad,
        "capable": " ".join(f"{x},{y}" for x, y in capable),
        "interrupted": " ".join(f"{x},{y}" for x, y in interrupted),
        "dots": [{"x": c[0], "yc": c[1], "yi": i[1], **p} for c, i, p in zip(capable, interrupted, points,
                                                                          strict=True)],
        "grid": [{"pct": pct, "y": xy(0, pct)[1]} for pct in (0, 50, 100)],
    }
