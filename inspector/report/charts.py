"""Small inline SVG charts for the HTML report: no plotting library, no external files."""

from __future__ import annotations

from datetime import datetime
from html import escape

_FONT = 'font-family="Helvetica, Arial, sans-serif" font-size="11"'


def pareto_svg(counts: list[tuple[str, int]], *, width: int = 560, height: int = 240) -> str:
    """Bars of defect counts by class, largest first, with the cumulative share as a line."""
    if not counts:
        return '<p class="muted">No defects in this period.</p>'
    left, right, top, bottom = 40, 40, 12, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(c for _, c in counts)
    total = sum(c for _, c in counts)
    step = plot_w / len(counts)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="Defects by class">'
    ]
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#444"/>')
    cumulative, points = 0, []
    for k, (label, count) in enumerate(counts):
        bar_h = plot_h * count / peak
        x = left + k * step + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" width="{step * 0.7:.1f}" '
            f'height="{bar_h:.1f}" fill="#d55e00"><title>{escape(label)}: {count}</title></rect>'
        )
        parts.append(
            f'<text x="{x + step * 0.35:.1f}" y="{top + plot_h - bar_h - 3:.1f}" text-anchor="middle" '
            f"{_FONT}>{count}</text>"
        )
        parts.append(
            f'<text x="{x + step * 0.35:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
            f"{_FONT}>{escape(label[:18])}</text>"
        )
        cumulative += count
        points.append((left + (k + 0.5) * step, top + plot_h * (1 - cumulative / total)))
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    parts.append(f'<polyline points="{path}" fill="none" stroke="#0072b2" stroke-width="2"/>')
    parts.append(f'<text x="{left + plot_w + 4}" y="{top + 8}" {_FONT} fill="#0072b2">100%</text>')
    parts.append(f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" {_FONT}>{peak}</text>')
    parts.append("</svg>")
    return "".join(parts)


def rate_svg(series: list[tuple[datetime, int, int]], *, bucket: str, width: int = 560, height: int = 220) -> str:
    """Fail rate per time bucket as a line, with the number inspected under each point."""
    if not series:
        return '<p class="muted">No inspections in this period.</p>'
    left, right, top, bottom = 44, 16, 12, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    rates = [100.0 * f / n if n else 0.0 for _, n, f in series]
    peak = max(5.0, max(rates) * 1.15)
    fmt = {"hour": "%m-%d %H:00", "day": "%Y-%m-%d", "month": "%Y-%m"}[bucket]
    step = plot_w / max(len(series) - 1, 1)
    xs = [left + (k * step if len(series) > 1 else plot_w / 2) for k in range(len(series))]
    ys = [top + plot_h * (1 - r / peak) for r in rates]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="Fail rate over time">'
    ]
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#444"/>')
    parts.append(f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" {_FONT}>{peak:.0f}%</text>')
    parts.append(f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" {_FONT}>0%</text>')
    if len(series) > 1:
        parts.append(
            '<polyline points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
            + '" fill="none" stroke="#d55e00" stroke-width="2"/>'
        )
    every = max(1, len(series) // 6)
    for k, ((when, n, f), x, y) in enumerate(zip(series, xs, ys, strict=True)):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#d55e00">'
            f"<title>{when.strftime(fmt)}: {f} of {n} failed ({rates[k]:.1f}%)</title></circle>"
        )
        if k % every == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle" {_FONT}>{when.strftime(fmt)}</text>'
            )
            parts.append(
                f'<text x="{x:.1f}" y="{top + plot_h + 28}" text-anchor="middle" {_FONT} fill="#666">n={n}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
