"""PNG plots of a postmortem draft's key series: the only module that imports matplotlib.

It draws with the non-interactive Agg backend, so it works on servers without a display.
Figures are made as plain :class:`~matplotlib.figure.Figure` objects, never through
``pyplot``, so nothing is kept in matplotlib's global figure registry between drafts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
from matplotlib import dates as mdates
from matplotlib.figure import Figure

from diagnose.postmortem import plots as plots_

matplotlib.use("Agg")

_COLOURS = {
    "alert": "tab:orange",
    "onset": "tab:red",
    "change": "tab:purple",
    "decision": "tab:green",
    "action": "tab:olive",
    "recovered": "tab:blue",
    "resolved": "tab:blue",
}


def write_plots(plots: Sequence[plots_.Plot], *, folder: Path) -> dict[str, str]:
    """Draw each plot into ``folder/NAME.png``; returns plot name → file name."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for plot in plots:
        path = folder / f"{plot.name}.png"
        draw(plot, path=path)
        written[plot.name] = path.name
    return written


def draw(plot: plots_.Plot, *, path: Path) -> None:
    """One series with its markers (onset, culprit change, decision, fix, recovery)."""
    figure = Figure(figsize=(9, 3.6), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    times = [_number(datetime.fromtimestamp(t, tz=UTC)) for t in plot.times]
    values = [math.nan if v is None else v for v in plot.values]
    axes.plot(times, values, color="tab:gray", linewidth=1.4)
    edges = list(times)
    for marker in plot.markers:
        at = _number(marker.at)
        colour = _COLOURS.get(marker.kind, "black")
        axes.axvline(at, color=colour, linestyle="--", linewidth=1.2, label=marker.label)
        edges.append(at)
    if edges and max(edges) > min(edges):  # markers after the data (a later decision) show too
        axes.set_xlim(min(edges), max(edges) + (max(edges) - min(edges)) * 0.02)
    axes.set_title(plot.title, fontsize=10, loc="left")
    axes.set_xlabel("time (UTC)")
    formatter = mdates.DateFormatter("%H:%M", tz=UTC)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)
    axes.grid(alpha=0.3)
    if plot.markers:
        axes.legend(loc="upper left", fontsize=8, framealpha=0.8)
    figure.savefig(path, format="png")


def _number(moment: datetime) -> float:
    """Matplotlib's date number for a moment (days since its epoch)."""
    return float(mdates.date2num(moment))  # type: ignore[no-untyped-call]
