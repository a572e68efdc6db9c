"""A small table type that writes itself as Markdown and CSV (units live in the headers)."""

from __future__ import annotations

import csv
import io
import math
from typing import NamedTuple


def _format(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1000 or magnitude < 0.01:
        return f"{value:.3g}"
    return f"{value:.3f}" if magnitude < 10 else f"{value:.2f}"


class Table(NamedTuple):
    """A titled table; every numeric column's header names its unit.

    Attributes
    ----------
    title : str
    columns : tuple of str
    rows : tuple of tuples
        Cells are str, int, float or None (written as ``n/a``).
    note : str
        One line under the Markdown table (how to read it).
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    note: str = ""

    def __check_shape(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"{self.title}: row {row!r} has the wrong number of cells")

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table with a bold title line."""
        self.__check_shape()
        lines = [f"**{self.title}**", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(_format(c) for c in row) + " |")
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """CSV with full-precision numbers (empty cell for n/a)."""
        self.__check_shape()
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(
                [
                    ""
                    if c is None or (isinstance(c, float) and not math.isfinite(c))
                    else repr(c)
                    if isinstance(c, float)
                    else c
                    for c in row
                ]
            )
        return buf.getvalue()

    def to_html(self) -> str:
        """An HTML table (for the rendered report)."""
        from html import escape

        self.__check_shape()
        head = "".join(f"<th>{escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(_format(c))}</td>" for c in row) + "</tr>"
            for row in self.rows
        )
        note = f"<p class='note'>{escape(self.note)}</p>" if self.note else ""
        return (
            f"<p><b>{escape(self.title)}</b></p><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{note}"
        )
