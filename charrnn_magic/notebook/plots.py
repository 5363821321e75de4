"""Loss curves as inline SVG text: no matplotlib, renders in any notebook front end.

``loss_curve_svg(model.history)`` returns an ``<svg>`` string; put it into an
``ipywidgets.HTML(...).value`` (it then redraws in place) or show it with
``IPython.display.SVG(data=...)``.
"""
from __future__ import annotations

import math
from html import escape

import numpy as np

__all__ = ["loss_curve_svg"]

TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#e8710a"
_AXIS_COLOR = "#888888"
_GRID_COLOR = "#dddddd"
_TEXT_COLOR = "#555555"
_FONT = 'font-family="sans-serif" font-size="11"'


def loss_curve_svg(history, width: int = 480, height: int = 200, title: str | None = None,
                   max_points: int | None = None) -> str:
    """Training (and validation) loss against steps, as an SVG string.

    ``history`` is a :class:`~charrnn_magic.History` or anything with the lists ``step``,
    ``loss``, ``val_step``, ``val_loss`` (attributes or mapping keys). Long histories are
    averaged into at most ``max_points`` points (default: one per pixel of plot width), so the
    picture stays small and quick to redraw while training runs for hours. Non-finite values
    are skipped. An empty history gives a frame that says "no steps yet". The step of the best
    validation (``history.best_step``, when known) is marked with a dashed line and "best".
    """
    width, height = int(width), int(height)
    left, right, top, bottom = 46, 22, 22 if title else 10, 24
    pw, ph = max(width - left - right, 10), max(height - top - bottom, 10)
    steps, loss = _finite(_field(history, "step"), _field(history, "loss"))
    vsteps, vloss = _finite(_field(history, "val_step"), _field(history, "val_loss"))
    steps, loss = _downsample(steps, loss, max_points or pw)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="loss curve">']
    if title:
        parts.append(f'<text x="{left}" y="14" font-family="sans-serif" font-size="12" '
                     f'fill="{_TEXT_COLOR}">{escape(title)}</text>')
    if steps.size == 0 and vsteps.size == 0:
        parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
                     f'stroke="{_GRID_COLOR}"/>')
        parts.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph / 2:.1f}" text-anchor="middle" '
                     f'{_FONT} fill="{_TEXT_COLOR}">no steps yet</text></svg>')
        return "".join(parts)

    all_x = np.concatenate([steps, vsteps])
    all_y = np.concatenate([loss, vloss])
    x0, x1 = float(all_x.min()), float(all_x.max())
    if x1 <= x0:
        x0, x1 = x0 - 1.0, x0 + 1.0
    y_ticks = _nice_ticks(float(all_y.min()), float(all_y.max()), 5)
    y0, y1 = y_ticks[0], y_ticks[-1]
    x_ticks = [t for t in _nice_ticks(x0, x1, 5, min_step=1.0) if x0 <= t <= x1]

    def sx(x):
        return left + (np.asarray(x, dtype=float) - x0) / (x1 - x0) * pw

    def sy(y):
        return top + ph - (np.asarray(y, dtype=float) - y0) / (y1 - y0) * ph

    # Grid and tick labels first, so the curves are drawn over them.
    for t in y_ticks:
        y = float(sy(t))
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" '
                     f'stroke="{_GRID_COLOR}" stroke-width="1"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 3.5:.1f}" text-anchor="end" {_FONT} '
                     f'fill="{_TEXT_COLOR}">{_fmt_tick(t, y_ticks)}</text>')
    for t in x_ticks:
        x = float(sx(t))
        parts.append(f'<line x1="{x:.1f}" y1="{top + ph}" x2="{x:.1f}" y2="{top + ph + 4}" '
                     f'stroke="{_AXIS_COLOR}"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 15}" text-anchor="middle" {_FONT} '
                     f'fill="{_TEXT_COLOR}">{_fmt_tick(t, x_ticks)}</text>')
    parts.append(f'<polyline points="{left},{top} {left},{top + ph} {left + pw},{top + ph}" '
                 f'fill="none" stroke="{_AXIS_COLOR}"/>')
    parts.append(f'<text x="10" y="{top + ph / 2:.1f}" {_FONT} fill="{_TEXT_COLOR}" '
                 f'text-anchor="middle" transform="rotate(-90 10 {top + ph / 2:.1f})">'
                 f'nats/char</text>')

    best = getattr(history, "best_step", None) if not isinstance(history, dict) else \
        history.get("best_step")
    if best is not None and x0 <= best <= x1:
        bx = float(sx(best))
        parts.append(f'<line class="best-step" x1="{bx:.1f}" y1="{top}" x2="{bx:.1f}" '
                     f'y2="{top + ph}" stroke="{VAL_COLOR}" stroke-dasharray="3,3" '
                     f'stroke-width="1"/>')
        parts.append(f'<text x="{bx + 3:.1f}" y="{top + ph - 4}" {_FONT} fill="{VAL_COLOR}">'
                     f'best</text>')
    if steps.size:
        parts.append(_polyline(sx(steps), sy(loss), TRAIN_COLOR, 1.5))
    if vsteps.size:
        parts.append(_polyline(sx(vsteps), sy(vloss), VAL_COLOR, 1.5))
        if vsteps.size <= 40:  # dots only while they stay readable
            parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{VAL_COLOR}"/>'
                         for x, y in zip(sx(vsteps), sy(vloss), strict=True))

    # Legend with the latest values, top right.
    legend = []
    if loss.size:
        legend.append((TRAIN_COLOR, f"train {loss[-1]:.3f}"))
    if vloss.size:
        legend.append((VAL_COLOR, f"val {vloss[-1]:.3f}"))
    lx = left + pw - 8
    for _i, (color, label) in enumerate(reversed(legend)):
        ly = top + 12
        parts.append(f'<text x="{lx}" y="{ly}" text-anchor="end" {_FONT} fill="{color}">'
                     f'{escape(label)}</text>')
        lx -= 7 * len(label) + 14
    parts.append("</svg>")
    return "".join(parts)


def _field(history, name):
    if history is None:
        return []
    if isinstance(history, dict):
        return history.get(name) or []
    return getattr(history, name, None) or []


def _finite(x, y):
    # Copy first: the training thread may append while we read; zip to the common length.
    x, y = list(x), list(y)
    n = min(len(x), len(y))
    x = np.asarray(x[:n], dtype=float)
    y = np.asarray(y[:n], dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _downsample(x, y, max_points):
    """Bucket means, so a 100k-step history is still a ~400-point polyline."""
    n = x.size
    max_points = max(int(max_points), 2)
    if n <= max_points:
        return x, y
    edges = np.linspace(0, n, max_points + 1).astype(int)
    counts = np.diff(edges)
    keep = counts > 0
    starts = edges[:-1][keep]
    counts = counts[keep]
    xs = np.add.reduceat(x, starts) / counts
    ys = np.add.reduceat(y, starts) / counts
    # Keep the very last point exact: the legend and the eye look at the end of the curve.
    xs[-1], ys[-1] = x[-1], y[-1]
    return xs, ys


def _polyline(xs, ys, color, stroke_width):
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    if len(xs) == 1:
        return f'<circle cx="{xs[0]:.1f}" cy="{ys[0]:.1f}" r="2.5" fill="{color}"/>'
    return (f'<polyline points="{points}" fill="none" stroke="{color}" '
            f'stroke-width="{stroke_width}" stroke-linejoin="round"/>')


def _nice_ticks(lo: float, hi: float, n: int, min_step: float = 0.0) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k apart) covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = max(next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), min_step)
    start = math.floor(lo / step) * step
    stop = math.ceil(hi / step) * step
    count = int(round((stop - start) / step))
    # round() hides float noise such as 1.6300000000000001 in the labels and the picture.
    return [round(start + i * step, 10) for i in range(count + 1)]


def _fmt_tick(value: float, ticks) -> str:
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    if step >= 1 and float(value).is_integer():
        v = int(round(value))
        return f"{v / 1000:g}k" if abs(v) >= 10_000 else f"{v:,}"
    # As many decimals as the tick spacing needs: 0.5 -> 1, 0.25 -> 2, 0.02 -> 2.
    decimals = 0
    while decimals < 6 and abs(step * 10 ** decimals - round(step * 10 ** decimals)) > 1e-9:
        decimals += 1
    return f"{value:.{decimals}f}"
