"""HTML pieces of the report: one self-contained page (inline CSS, figures as data URIs).

The only script is :data:`IMAGE_CHECK`: on window load it counts the <img> elements that
decoded (``complete && naturalWidth > 0``) and writes ``data-images-loaded`` and
``data-images-total`` onto <body>, so a headless browser's ``--dump-dom`` proves every figure
loaded.  The page reads fine without it.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sspsim.outdir import FILE_MARK

__all__ = ["IMAGE_CHECK", "FigureSink", "esc", "note", "page", "section", "table"]

CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 1.2em 2em 4em; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; border-bottom: 2px solid #dde; padding-bottom: 0.2em; margin-top: 2.2em; }
h3 { font-size: 1.08em; margin-top: 1.4em; }
p.lead { color: #444; margin-top: 0; }
p.what { margin: 0.3em 0 0.8em; }
p.note, div.note { background: #f6f6f9; border-left: 4px solid #b9b9d0; padding: 0.45em 0.8em; color: #444; }
figure { margin: 0.6em 0 1.4em; }
figure img { max-width: 100%; height: auto; border: 1px solid #e4e4ea; }
figcaption { font-size: 0.85em; color: #555; overflow-wrap: anywhere; }
div.table { max-width: 100%; overflow-x: auto; margin: 0.5em 0 1.2em; }
table { border-collapse: collapse; font-size: 0.86em; }
table.wide { font-size: 0.76em; }
th, td { border: 1px solid #d8d8e0; padding: 0.25em 0.55em; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
td { max-width: 36em; }
th { background: #f0f0f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; overflow-wrap: normal; }
p.headline { font-weight: 600; }
tr.holds td.outcome, span.holds, td.yes { color: #1b7a3a; font-weight: 600; }
tr.violated td, td.no { background: #fdecec; }
tr.violated td.outcome, span.violated, td.no { color: #b3261e; font-weight: 600; }
tr.not_applicable td { color: #666; }
td.partly { color: #9a6700; font-weight: 600; }
details { margin: 0.3em 0; }
summary { cursor: pointer; font-weight: 600; }
code { background: #f3f3f7; padding: 0 0.25em; border-radius: 3px; }
nav ol { columns: 2; font-size: 0.92em; }
"""

IMAGE_CHECK = """window.addEventListener("load", function () {
  var imgs = document.getElementsByTagName("img"), loaded = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) { loaded++; } }
  document.body.setAttribute("data-images-loaded", String(loaded));
  document.body.setAttribute("data-images-total", String(imgs.length));
});"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def note(text: str) -> str:
    """A short note (already HTML-escaped text expected to be plain: it is escaped here)."""
    return f'<p class="note">{esc(text)}</p>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


WIDE = 8
"""Tables of this many columns or more get a smaller font (class "wide")."""


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, classes: Sequence[str] | None = None,
          row_classes: Sequence[str] | None = None, raw: bool = False) -> str:
    """An HTML table that fits the page: it scrolls sideways inside its box when it must, long words
    wrap, and wide tables use a smaller font.  Cells are escaped unless ``raw``; numbers are
    right-aligned via ``classes`` ("num")."""
    wide = ' class="wide"' if len(header) >= WIDE else ""
    out = ['<div class="table">', f"<table{wide}>", "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    for i, row in enumerate(rows):
        rc = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = []
        for j, cell in enumerate(row):
            cls = classes[j] if classes and j < len(classes) and classes[j] else ""
            attr = f' class="{esc(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{cell if raw else esc(cell)}</td>")
        out.append(f"<tr{rc}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


@dataclass
class FigureSink:
    """Collects figures: PNG bytes embedded as data URIs, and (when ``folder`` is set) each figure
    written there as ``NN-<name>.png``, ``.svg`` and ``.pdf`` (in order of addition).

    ``add`` returns the <figure> HTML, whose caption links the files.  ``files`` lists the PNGs,
    ``vectors`` the SVG and PDF files (none when ``write_vectors`` is off: PNG only, three times
    faster).  The caller prepares ``folder`` (sspsim's own, see build).
    """

    folder: Path | None = None
    write_vectors: bool = True
    files: list[Path] = field(default_factory=list)
    vectors: list[Path] = field(default_factory=list)
    count: int = 0

    def add(self, fig: Any, name: str, caption: str) -> str:
        from sspsim.reports.figures import FORMATS, figure_bytes

        data = figure_bytes(fig, "png")
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "figure"
        stem = f"{self.count:02d}-{slug}"
        where = ""
        if self.folder is not None:
            links = []
            for fmt in FORMATS if self.write_vectors else ("png",):
                path = self.folder / f"{stem}.{fmt}"
                path.write_bytes(data if fmt == "png" else figure_bytes(fig, fmt))
                (self.files if fmt == "png" else self.vectors).append(path)
                href = f"{self.folder.name}/{path.name}"
                links.append(f'<a href="{esc(href)}">{esc(fmt.upper())}</a>')
            where = f" Files ({esc(self.folder.name)}/{esc(stem)}.*): " + ", ".join(links) + "."
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        return (f'<figure><img src="{uri}" alt="{esc(caption)}">'
                f"<figcaption>Figure {self.count}. {esc(caption)}{where}</figcaption></figure>")


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    """The whole document."""
    links = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t in nav)
    return (
        f"<!DOCTYPE html>\n<!-- {FILE_MARK} report -->\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{esc(title)}</title>\n"
        f"<style>{CSS}</style>\n<script>\n{IMAGE_CHECK}\n</script>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n<p class=\"lead\">{esc(subtitle)}</p>\n"
        f"<nav><ol>{links}</ol></nav>\n{body}\n</body>\n</html>\n"
    )
