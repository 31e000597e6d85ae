"""Line plots in braille characters: each terminal cell holds 2 x 4 dots.

A plot is drawn once into a list of Strips (one per line) and then served from there, so a live
view costs one drawing per change, not one per repaint. Drawing is numpy and a few Segments per
line: about a millisecond for a few series of a few hundred points (plotext took ~70 ms, most of
the TUI's CPU while following runs).
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

COLOURS = ("cyan", "magenta", "yellow", "green", "red", "blue", "bright_white", "bright_cyan", "bright_magenta")
STYLES = tuple(Style(color=c) for c in COLOURS)
# the bit of each dot of a braille cell, by (row 0-3, column 0-1)
DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint8)
AXIS = Style(color="bright_black")
LABEL_WIDTH = 8
CELLS = np.array([" "] + [chr(0x2800 + bits) for bits in range(1, 256)])  # braille character of each dot pattern


def _ticks(low: float, high: float, log: bool) -> list[float]:
    """Round values inside [low, high]: powers of ten on a log axis (which holds log10 values),
    else multiples of 1, 2 or 5 x 10^k, three to five of them."""
    if log:
        found = [float(k) for k in range(math.ceil(low), math.floor(high) + 1)]
        return found if len(found) >= 2 else [low, high]
    raw = (high - low) / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [k * step for k in range(math.ceil(low / step), math.floor(high / step) + 1)]


def _label(value: float, log: bool) -> str:
    return f"1e{value:.0f}" if log and value == round(value) else f"{10**value if log else value:.4g}"


def _span(values: np.ndarray) -> tuple[float, float]:
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12 * max(1.0, abs(high)):
        low, high = low - 0.5, high + 0.5
    return low, high


def render_plot(series: list[tuple[str, np.ndarray, np.ndarray]], width: int, height: int, title: str = "",
                x_label: str = "", log_x: bool = False, log_y: bool = False) -> list[Strip]:
    """``height`` Strips of ``width`` cells: title and legend, the plot with y labels, x labels."""
    width, height = max(width, LABEL_WIDTH + 4), max(height, 5)
    legend = [Segment(title + "  ", Style(bold=True))]
    for i, (label, _, _) in enumerate(series):
        legend += [Segment("■ ", STYLES[i % len(STYLES)]), Segment(label + "  ")]
    lines = [Strip(legend).crop(0, width).extend_cell_length(width)]
    rows, columns = height - 3, width - LABEL_WIDTH - 1
    points = []
    for _, x, y in series:
        keep = np.isfinite(x) & np.isfinite(y) & (x > 0 if log_x else True) & (y > 0 if log_y else True)
        points.append((np.log10(x[keep]) if log_x else x[keep], np.log10(y[keep]) if log_y else y[keep]))
    if not any(len(px) for px, _ in points):
        blank = [Strip([Segment(" " * width)]) for _ in range(height - 2)]
        return lines + blank + [Strip([Segment(x_label.center(width), AXIS)])]
    (x0, x1), (y0, y1) = (_span(np.concatenate([p[k] for p in points if len(p[k])])) for k in (0, 1))
    dots = np.zeros((rows, columns), dtype=np.uint8)
    owner = np.full((rows, columns), -1)
    for index, (px, py) in enumerate(points):
        if not len(px):
            continue
        dx = (px - x0) / (x1 - x0) * (2 * columns - 1)
        dy = (y1 - py) / (y1 - y0) * (4 * rows - 1)
        if len(dx) > 1:  # sample every segment densely enough to touch each dot it crosses
            steps = np.maximum(np.ceil(np.maximum(abs(np.diff(dx)), abs(np.diff(dy)))), 1).astype(int)
            start = np.repeat(np.arange(len(steps)), steps)
            first = np.repeat(np.cumsum(steps) - steps, steps)  # where each segment's samples begin
            t = np.append((np.arange(len(start)) - first) / steps[start], 1.0)
            start = np.append(start, len(dx) - 2)
            dx = dx[start] + (dx[start + 1] - dx[start]) * t
            dy = dy[start] + (dy[start + 1] - dy[start]) * t
        col, row = np.rint(dx).astype(int), np.rint(dy).astype(int)
        cells = (row // 4, col // 2)
        np.bitwise_or.at(dots, cells, DOT_BITS[row % 4, col % 2])
        owner[cells] = index
    y_ticks = {int(round((y1 - v) / (y1 - y0) * (rows - 1))): _label(v, log_y) for v in _ticks(y0, y1, log_y)}
    for r in range(rows):
        label = y_ticks.get(r, "")
        segments = [Segment(label.rjust(LABEL_WIDTH - 1)[: LABEL_WIDTH - 1] + " ", AXIS), Segment("│", AXIS)]
        text = "".join(CELLS[dots[r]])
        edges = [0, *(np.flatnonzero(np.diff(owner[r])) + 1), columns]  # runs of one colour: one Segment each
        for start, end in zip(edges[:-1], edges[1:]):
            who = owner[r, start]
            segments.append(Segment(text[start:end], STYLES[who % len(STYLES)] if who >= 0 else None))
        lines.append(Strip(segments))
    axis = [" "] * columns
    for v in _ticks(x0, x1, log_x):
        text = _label(v, log_x)
        at = min(max(int(round((v - x0) / (x1 - x0) * (columns - 1))) - len(text) // 2, 0), columns - len(text))
        axis[at : at + len(text)] = list(text)
    lines.append(Strip([Segment(" " * LABEL_WIDTH + "".join(axis), AXIS)]))
    lines.append(Strip([Segment(x_label.center(width), AXIS)]))
    return [line.extend_cell_length(width).crop(0, width) for line in lines]
