"""The report layer: figures refuse missing labels and alt text, tables say what they leave out,
templates escape what they are given."""

import pandas as pd
import pytest

from riskmodel.report.common import new_figure
from riskmodel.report.page import Column, embed, frame_table, page_context, render


def _figure(xlabel="x (units)", ylabel="y (units)", title="a title"):
    fig = new_figure(4, 3)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def test_embed_makes_an_inline_png_and_keeps_a_file(tmp_path):
    fig = embed(_figure(), title="T", alt="a line from 0 to 1", path=tmp_path / "f.png")
    assert fig.png[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.uri.startswith("data:image/png;base64,")
    assert (tmp_path / "f.png").read_bytes() == fig.png


@pytest.mark.parametrize("kwargs, match", [
    ({"xlabel": ""}, "no x label"),
    ({"ylabel": ""}, "no y label"),
    ({"title": ""}, "no title"),
])
def test_embed_refuses_unlabelled_figures(kwargs, match):
    with pytest.raises(ValueError, match=match):
        embed(_figure(**kwargs), title="T", alt="some alt text")


def test_embed_refuses_a_figure_without_alt_text():
    with pytest.raises(ValueError, match="alt"):
        embed(_figure(), title="T", alt=" ")


def test_shared_x_axis_needs_its_label_once():
    fig = new_figure(4, 3)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for ax in (top, bottom):
        ax.plot([0, 1], [0, 1])
        ax.set_ylabel("y")
    top.set_title("t")
    bottom.set_xlabel("date")
    embed(fig, title="T", alt="two panels sharing the date axis")


def test_frame_table_formats_cells_and_notes_the_rows_left_out():
    frame = pd.DataFrame({"name": ["a", "b", "c"], "amount": [1234.4, -5.0, 1e6]})
    table = frame_table(frame, [Column("name", "name", str, False),
                                Column("amount", "amount", lambda v: f"{v:,.0f}")],
                        max_rows=2, total_rows=3_000, where="margins.parquet")
    assert table.rows == (("a", "1,234"), ("b", "-5"))
    assert table.note == "2 of 3,000 rows shown; all of them are in margins.parquet."
    assert table.cell_class(0, 0) == "label" and table.cell_class(0, 1) == "num"
    assert frame_table(frame, [Column("name", "name", str, False)]).note == ""


def test_templates_escape_their_input():
    context = page_context(title="<script>alert(1)</script>", verdict="a & b < c, verdict text",
                           findings=["x > y"])
    html = render("base.html.j2", **context)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "a &amp; b &lt; c" in html and "x &gt; y" in html


def test_unknown_tone_is_refused():
    with pytest.raises(ValueError, match="tone"):
        page_context(title="t", verdict="v", tone="purple")
