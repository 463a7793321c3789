"""Render the theorem catalogue as Markdown: ``docs/reference/theorems.md`` is this module's output.

    python -m sspsim.proofs_check.catalogue_doc > docs/reference/theorems.md

The page is generated from :data:`proofs_check.CATALOGUE` (names, references, evidence tags,
scopes, statements, and the first paragraph of each check's own docstring), so it cannot drift
from the checks; ``tests/test_docs.py`` compares the committed file with :func:`render`.
"""

from __future__ import annotations

import inspect
import re
import sys

from sspsim.proofs_check.registry import CATALOGUE
from sspsim.proofs_check.theorem import Theorem

__all__ = ["COMMAND", "TAGS", "main", "render"]

COMMAND = "python -m sspsim.proofs_check.catalogue_doc > docs/reference/theorems.md"

TAGS: dict[str, tuple[str, str]] = {  # tag: (short name, what it means), as in the project's reference/theorems.md
    "V": ("verified", "stated in a public source that was read directly."),
    "R": ("recalled", "recalled from the named paper, not re-read from its full text; recalled constants deserve care."),
    "D": ("derived", "derived from the definitions (DESIGN's semantics or a source's model), then confirmed "
                     "numerically with small Monte Carlo or exact computations."),
    "X": ("reconstruction", "the source text was unavailable, so this is the most likely reading of the paper's "
                            "claim, made checkable. Never present it as the paper's own theorem."),
}

SCOPES: dict[str, str] = {
    "run": "one run directory",
    "sweep": "a sweep directory: a folder of run directories that differ in the ways the check names",
}

_SPECIAL = re.compile(r"([\\`*_\[\]|]|<(?=[A-Za-z/!?]))")
_PROSE = re.compile(r"([\\`_\[\]|]|<(?=[A-Za-z/!?]))")  # docstrings keep *emphasis*
_LITERAL = re.compile(r"``(.+?)``")


def _md(text: str) -> str:
    """Markdown-escape plain text (statements hold ``*``, ``_``, ``|`` and ``<`` from their math)."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _prose(text: str) -> str:
    """A docstring paragraph as Markdown: RST literals (double backquotes) become code spans, *emphasis*
    stays, and the rest is escaped."""
    parts = _LITERAL.split(" ".join(text.split()))
    return "".join(f"`{p}`" if i % 2 else _PROSE.sub(r"\\\1", p) for i, p in enumerate(parts))


def _docstring(theorem: Theorem) -> list[str]:
    """The first paragraph of the check class's own docstring (not an inherited one) as Markdown lines.

    A paragraph that ends with a colon introduces the next one (a list), which is kept too.
    """
    doc = type(theorem).__dict__.get("__doc__")
    if not doc:
        return []
    paragraphs = [p for p in inspect.cleandoc(doc).split("\n\n") if p.strip()]
    lines = [_prose(paragraphs[0])]
    if paragraphs[0].rstrip().endswith(":") and len(paragraphs) > 1:
        items = re.split(r"^[*-] ", paragraphs[1], flags=re.M)
        lines.append("")
        lines += [f"- {_prose(item)}" for item in items if item.strip()]
    return lines


def render() -> str:
    """The whole Markdown page."""
    tags = [*TAGS, *sorted({t.reference.tag for t in CATALOGUE} - set(TAGS))]
    lines = [
        "# Theorem catalogue",
        "",
        "<!-- Generated from sspsim.proofs_check.CATALOGUE; do not edit by hand. Regenerate with:",
        f"     {COMMAND} -->",
        "",
        f"`sspsim check` runs these {len(CATALOGUE)} checks, in this order. "
        "`sspsim check --list` prints the same catalogue, and `--theorem NAME` selects checks by name or prefix "
        "(`ssp`, `ho2013`, `dutta2018.sync`). See [the CLI reference](cli.md#sspsim-check) for outcomes and exit codes.",
        "",
        "Each verdict is `holds`, `violated` or `not_applicable`. A check whose premise is unmet says "
        "`not_applicable` and names the premise; it never says `holds`.",
        "",
        "**Evidence tags** say how sure the statement is:",
        "",
    ]
    for tag in tags:
        short, meaning = TAGS.get(tag, ("undocumented", "a tag this page does not explain."))
        lines.append(f"- **[{tag}] {short}**: {meaning}")
    lines += [
        "",
        "**Scope** says what a check reads: " + "; ".join(f"`{k}`, {v}" for k, v in SCOPES.items()) + ". "
        "A sweep check given a single run is `not_applicable`.",
        "",
        "Locations such as `theorems.md §7.1` refer to the project's research notes on the sources "
        "(kept with the design documents, outside this repository), not to this page.",
        "",
        "| theorem | source | where | tag | scope |",
        "|---|---|---|---|---|",
    ]
    for t in CATALOGUE:
        r = t.reference
        lines.append(f"| `{t.name}` | {_md(r.source)} | {_md(r.where)} | {r.tag} | {t.scope} |")
    for t in CATALOGUE:
        r = t.reference
        lines += [
            "",
            f"## `{t.name}`",
            "",
            f"- Source: {_md(r.source)}",
            f"- Where: {_md(r.where)}",
            f"- Evidence: [{r.tag}] {TAGS.get(r.tag, ('undocumented',))[0]}",
            f"- Scope: {t.scope} ({SCOPES.get(t.scope, t.scope)})",
            "",
            f"**Statement.** {_md(t.summary)}" if t.summary else "**Statement.** (none given)",
        ]
        more = _docstring(t)
        if more:
            lines += ["", *more]
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
