"""A report: headings, text, tables and figures, written as Markdown and rendered HTML."""

from __future__ import annotations

import html
import os
from pathlib import Path

from .._io import write_text_atomic
from ..plots import save_figure
from ._tables import Table

_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "line-height:1.45}table{border-collapse:collapse;margin:0.5em 0;font-size:0.9em}"
    "td,th{border:1px solid #bbb;padding:3px 7px;text-align:right}"
    "th{background:#eee}td:first-child,th:first-child{text-align:left}"
    "img{max-width:100%}.note{color:#555;font-size:0.9em}pre{background:#f4f4f4;padding:0.5em}"
)


class Report:
    """Build a report section by section, then :meth:`write` it.

    Figures are saved at once (PNG and PDF, 150 dpi, under ``figures/``), tables also as CSV
    (under ``tables/``); the Markdown and the HTML file embed the PNGs by relative path.
    """

    def __init__(self, out_dir: str | os.PathLike, title: str):
        self.out_dir = Path(out_dir)
        self.title = title
        self._md: list[str] = [f"# {title}\n"]
        self._html: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        self.files: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self._md.append(f"{'#' * level} {text}\n")
        self._html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str) -> None:
        self._md.append(text.rstrip() + "\n")
        self._html.append(f"<p>{html.escape(text)}</p>")

    def code(self, text: str) -> None:
        self._md.append("```\n" + text.rstrip() + "\n```\n")
        self._html.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, table: Table, stem: str) -> None:
        """Add a table; also write it to ``tables/<stem>.csv`` and ``tables/<stem>.md``."""
        csv_path = self.out_dir / "tables" / f"{stem}.csv"
        write_text_atomic(csv_path, table.to_csv())
        write_text_atomic(csv_path.with_suffix(".md"), table.to_markdown())
        self.files += [str(csv_path), str(csv_path.with_suffix(".md"))]
        self._md.append(table.to_markdown() + f"\n(CSV: `tables/{stem}.csv`)\n")
        self._html.append(table.to_html())

    def figure(self, fig, stem: str, caption: str) -> None:
        """Save ``fig`` as ``figures/<stem>.png`` and ``.pdf`` and embed it."""
        self.files += save_figure(fig, self.out_dir / "figures" / stem)
        self._md.append(f"![{caption}](figures/{stem}.png)\n\n*{caption}*\n")
        self._html.append(
            f"<figure><img src='figures/{stem}.png' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def write(self) -> Path:
        """Write ``report.md`` and ``report.html``; return the Markdown path."""
        md = self.out_dir / "report.md"
        write_text_atomic(md, "\n".join(self._md))
        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(self._html)
            + "</body></html>\n"
        )
        write_text_atomic(self.out_dir / "report.html", page)
        self.files += [str(md), str(self.out_dir / "report.html")]
        return md
