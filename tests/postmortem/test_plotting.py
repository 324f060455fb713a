"""The plots are real PNG images of the series, drawn without a display."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from diagnose import postmortem
from diagnose.postmortem import drafting, plots, plotting


def test_each_plot_is_a_png_of_plausible_size_with_something_drawn(
    bad_deploy: postmortem.RunRecord, tmp_path: Path
) -> None:
    draft = drafting.draft(bad_deploy)
    written = plotting.write_plots(draft.plots, folder=tmp_path / "pm")
    assert set(written) == {p.name for p in draft.plots}
    for name in written.values():
        path = tmp_path / "pm" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (900, 360)
            pixels = np.asarray(image.convert("RGB"))
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # lines, text, markers


def test_a_plot_with_no_values_still_draws(tmp_path: Path) -> None:
    empty = plots.Plot(
        name="empty", title="nothing", times=(), values=(), evidence="ev-0", markers=()
    )
    written = plotting.write_plots([empty], folder=tmp_path)
    assert (tmp_path / written["empty"]).stat().st_size > 1000
