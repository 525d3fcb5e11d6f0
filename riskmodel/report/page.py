"""The report layer: one way to render a page, embed a figure and lay out a table.

Every HTML page of riskmodel is a Jinja2 template under ``riskmodel/report/templates/`` that
extends ``base.html.j2`` (one stylesheet, ``report.css``, inlined) and draws its figures and
tables with the macros of ``macros.html.j2``. Pages are self-contained: figures are PNG data
URIs, the stylesheet is inline, nothing is fetched, so a page opens from an e-mail or an
artefact store with the network cut off.

* :func:`embed` turns a matplotlib figure into a :class:`PageFigure` (PNG bytes, a data URI,
  title, alt text, caption); it refuses a figure whose axes lack a label, so every figure a
  page shows names its axes and their units.
* :func:`frame_table` turns a DataFrame into a :class:`PageTable` of formatted cells (numbers
  right-aligned, :mod:`riskmodel.report.formats`), cut to ``max_rows`` with a note saying how
  many rows the page leaves out and which file holds them all. The stylesheet lets every table
  scroll inside its own box, so none overflows the page.
* :func:`render` and :func:`write_page` render a template with the formatting functions as
  filters.
"""

from __future__ import annotations

import datetime as _dt
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from matplotlib.figure import Figure

from riskmodel import __version__
from riskmodel.report import formats
from riskmodel.report.common import png_data_uri

__all__ = ["Column", "PageFigure", "PageTable", "check_labels", "embed", "frame_table",
           "key_values", "legend_beside", "page_context", "render", "write_page"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class PageFigure:
    """A figure as a page embeds it.

    Attributes
    ----------
    title : str, shown above the image.
    alt : str, the image's alt text: what the figure shows, in words.
    png : bytes, the PNG.
    caption : str, optional text under the image (how to read it).
    """

    title: str
    alt: str
    png: bytes
    caption: str = ""

    @property
    def uri(self) -> str:
        """The PNG as a ``data:`` URI."""
        return png_data_uri(self.png)


def _has_label(ax: Any, axis: str) -> bool:
    getter = ax.get_xlabel if axis == "x" else ax.get_ylabel
    if getter().strip():
        return True
    shared = ax.get_shared_x_axes() if axis == "x" else ax.get_shared_y_axes()
    return any((a.get_xlabel() if axis == "x" else a.get_ylabel()).strip()
               for a in shared.get_siblings(ax))


def check_labels(fig: Figure) -> None:
    """Raise ValueError when a visible axes of ``fig`` has no title anywhere in the figure, or
    lacks an axis label (its own or a shared axis's; a colour bar needs its y label only)."""
    titled = bool(fig.get_suptitle().strip())
    for ax in fig.axes:
        if not ax.axison:
            continue
        titled = titled or bool(ax.get_title().strip())
        colorbar = getattr(ax, "_colorbar", None) is not None
        axes = ("y",) if colorbar else ("x", "y")
        missing = [a for a in axes if not _has_label(ax, a)]
        if missing:
            raise ValueError(f"figure axes {ax.get_title()!r} has no {'/'.join(missing)} label "
                             "(every figure names its axes and units)")
    if not titled:
        raise ValueError("figure has no title")


def legend_beside(fig: Figure, *axes: Any, where: str = "right upper", **kwargs: Any) -> None:
    """One legend for the entries of ``axes``, outside the plotting area (``where``: ``right
    upper``, ``right lower`` or ``lower center``), so that it never covers the data."""
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    kwargs.setdefault("fontsize", 8)
    kwargs["loc"] = f"outside {where}"  # matplotlib's constrained-layout placements
    fig.legend(handles, labels, frameon=False, **kwargs)


def embed(fig: Figure, *, title: str, alt: str, caption: str = "", path: Path | None = None,
          dpi: int = 100) -> PageFigure:
    """Render ``fig`` to PNG (and to ``path`` when given) and clear it.

    Raises
    ------
    ValueError
        If ``alt`` is empty or :func:`check_labels` finds an unlabelled axes.
    """
    if not alt.strip():
        raise ValueError(f"figure {title!r} has no alt text")
    check_labels(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    fig.clear()
    png = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(png)
    return PageFigure(title, alt, png, caption)


@dataclass(frozen=True)
class Column:
    """How a table shows one column: its header, a formatter and its alignment."""

    key: str
    header: str
    format: Callable[[Any], str] = str
    numeric: bool = True


@dataclass(frozen=True)
class PageTable:
    """A table of formatted cells.

    Attributes
    ----------
    header : tuple of str
    rows : tuple of tuples of str, one per row, cells already formatted.
    numeric : tuple of bool, per column: right-aligned when True.
    caption : str, optional title above the table.
    note : str, optional text under it (rows left out, where the rest is).
    classes : tuple of tuples of str, optional per-cell CSS class (e.g. a traffic light).
    tall : bool, shown at full height (a short key-value table); others scroll past 40 rem.
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    caption: str = ""
    note: str = ""
    classes: tuple[tuple[str, ...], ...] = field(default=())
    tall: bool = False

    def cell_class(self, i: int, j: int) -> str:
        """The CSS class of cell (row ``i``, column ``j``): alignment, then any extra class."""
        extra = self.classes[i][j] if self.classes and self.classes[i][j] else ""
        return ("num" if self.numeric[j] else "label") + (f" {extra}" if extra else "")


def frame_table(frame: pd.DataFrame, columns: Sequence[Column], *, caption: str = "",
                max_rows: int | None = None, total_rows: int | None = None,
                where: str = "", note: str = "",
                classes: Mapping[str, Callable[[Any], str]] | None = None) -> PageTable:
    """A :class:`PageTable` of ``frame``'s ``columns``, first ``max_rows`` rows.

    ``total_rows`` (default ``len(frame)``) is the size of what the table is taken from;
    when the table shows fewer, the note says so and names ``where`` the rest is.
    ``classes`` maps a column key to a function of its value giving a CSS class.
    """
    shown = frame if max_rows is None else frame.iloc[:max_rows]
    total = len(frame) if total_rows is None else total_rows
    data = {c.key: shown[c.key].tolist() for c in columns}
    rows = tuple(tuple(c.format(data[c.key][i]) for c in columns) for i in range(len(shown)))
    cells: tuple[tuple[str, ...], ...] = ()
    if classes:
        cells = tuple(tuple(classes[c.key](data[c.key][i]) if c.key in classes else ""
                            for c in columns) for i in range(len(shown)))
    notes = [note] if note else []
    if len(shown) < total:
        notes.append(f"{formats.count(len(shown))} of {formats.count(total)} rows shown"
                     + (f"; all of them are in {where}" if where else "") + ".")
    return PageTable(tuple(c.header for c in columns), rows,
                     tuple(c.numeric for c in columns), caption, " ".join(notes), cells)


def key_values(pairs: Sequence[tuple[str, str]], caption: str = "") -> PageTable:
    """A two-column table of (what, value) pairs, values already formatted."""
    return PageTable(("", ""), tuple((k, v) for k, v in pairs), (False, False), caption,
                     tall=True)


def page_context(*, title: str, verdict: str, tone: str = "neutral", subtitle: str = "",
                 headline: Sequence[Mapping[str, str]] = (), findings: Sequence[str] = ()
                 ) -> dict[str, Any]:
    """What ``base.html.j2`` needs: the title, the verdict and its tone (``good``,
    ``attention``, ``alarm`` or ``neutral``), the headline numbers (``value``, ``label``), the
    findings in words, the riskmodel version and the time the page was written."""
    if tone not in ("good", "attention", "alarm", "neutral"):
        raise ValueError(f"tone {tone!r}")
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return {"title": title, "subtitle": subtitle, "verdict": verdict, "tone": tone,
            "headline": list(headline), "findings": list(findings),
            "version": __version__, "created": created}


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty cell
        trim_blocks=True, lstrip_blocks=True,
    )
    for name in formats.__all__:
        env.filters[name] = getattr(formats, name)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context``."""
    return _environment().get_template(template).render(**context)


def write_page(path: Path, template: str, **context: Any) -> Path:
    """Render ``template`` into ``path`` (UTF-8); returns ``path``."""
    Path(path).write_text(render(template, **context), encoding="utf-8")
    return Path(path)
