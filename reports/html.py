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
figcaption { font-size: 0.85em; color: #555; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.86em; }
th, td { border: 1px solid #d8d8e0; padding: 0.25em 0.55em; text-align: left; vertical-align: top; }
th { background: #f0f0f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
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


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, classes: Sequence[str] | None = None,
          row_classes: Sequence[str] | None = None, raw: bool = False) -> str:
    """An HTML table.  Cells are escaped unless ``raw``; numbers are right-aligned via ``classes`` ("num")."""
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    for i, row in enumerate(rows):
        rc = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = []
        for j, cell in enumerate(row):
            cls = classes[j] if classes and j < len(classes) and classes[j] else ""
            attr = f' class="{esc(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{cell if raw else esc(cell)}</td>")
        out.append(f"<tr{rc}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


@dataclass
class FigureSink:
    """Collects figures: PNG bytes embedded as data URIs, and (when ``folder`` is set) written there.

    ``add`` returns the <figure> HTML.  File names are ``NN-<name>.png`` in order of addition.
    """

    folder: Path | None = None
    files: list[Path] = field(default_factory=list)
    count: int = 0

    def add(self, fig: Any, name: str, caption: str) -> str:
        from sspsim.reports.figures import png_bytes

        data = png_bytes(fig)
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "figure"
        filename = f"{self.count:02d}-{slug}.png"
        where = ""
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / filename
            path.write_bytes(data)
            self.files.append(path)
            where = f" (file: {self.folder.name}/{filename})"
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        return (f'<figure><img src="{uri}" alt="{esc(caption)}">'
                f"<figcaption>Figure {self.count}. {esc(caption)}{esc(where)}</figcaption></figure>")


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
