"""What the report writers share: a bare Agg figure and PNGs inlined in HTML.

Plots are drawn on matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), never
through ``pyplot``: no display is needed, no global backend state is touched and nothing is
left open once a figure goes out of scope. Pages embed their PNGs as ``data:`` URIs, so one
HTML file opens anywhere (e-mail, artefact stores) with no other file.
"""

from __future__ import annotations

import base64

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["new_figure", "png_data_uri"]


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches, constrained layout, on its own Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...``: the PNG bytes as a URI for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
