"""The documentation (docs/) stays in step with the code.

The theorem page is generated from the catalogue; the reference pages must name every config key,
trace column and subcommand; every relative link and anchor must resolve; every TOML example must
be a valid config.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import pytest

import sspsim
from sspsim.config import METADATA_SECTIONS, SECTIONS, config_from_dict, section_keys
from sspsim.speeds import SPEED_MODELS, speed_kinds
from sspsim.trace import TRACE_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _read(relative: str) -> str:
    return (DOCS / relative).read_text()


def _prose(text: str) -> str:
    """The text without its fenced code blocks (a '# comment' in a block is not a heading)."""
    return FENCE.sub("", text)


def _sections(text: str, level: int = 2) -> dict[str, str]:
    """Heading text -> the body under it, up to the next heading of the same or a higher level."""
    marks = "#" * level
    out: dict[str, str] = {}
    heading, body = None, []
    for line in text.splitlines():
        m = re.match(rf"^(#{{1,{level}}}) (.*)$", line)
        if m:
            if heading is not None:
                out[heading] = "\n".join(body)
            heading, body = (m.group(2).strip() if m.group(1) == marks else None), []
        else:
            body.append(line)
    if heading is not None:
        out[heading] = "\n".join(body)
    return out


def _section(text: str, heading: str, level: int = 2) -> str:
    sections = _sections(_prose(text), level)
    assert heading in sections, f"no heading {'#' * level} {heading}; headings: {list(sections)}"
    return sections[heading]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(page.read_text()).splitlines():
        m = re.match(r"^#{1,6} (.*)$", line)
        if m:
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


# -- (a) the theorem page is the catalogue's rendering ------------------------------------------

def test_theorem_page_is_generated_from_the_catalogue() -> None:
    """docs/reference/theorems.md equals sspsim.proofs_check.catalogue_doc.render(), byte for byte."""
    from sspsim.proofs_check.catalogue_doc import COMMAND, render

    page = DOCS / "reference" / "theorems.md"
    assert page.is_file(), f"docs/reference/theorems.md is missing; generate it with: {COMMAND}"
    assert page.read_text() == render(), (
        f"docs/reference/theorems.md is out of date with proofs_check.CATALOGUE; regenerate it with: {COMMAND}")


def test_theorem_page_names_every_theorem_and_tag() -> None:
    from sspsim.proofs_check import CATALOGUE
    from sspsim.proofs_check.catalogue_doc import TAGS

    text = _read("reference/theorems.md")
    for t in CATALOGUE:
        assert f"## `{t.name}`" in text
        assert t.reference.tag in TAGS, f"{t.name}: tag {t.reference.tag!r} has no explanation in catalogue_doc.TAGS"


# -- (b) every config key ----------------------------------------------------------------------

@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_config_reference_documents_every_key(section: str) -> None:
    """Each section of sspsim.config.SECTIONS has a '## `[section]`' part naming each of its keys."""
    body = _section(_read("reference/config.md"), f"`[{section}]`")
    missing = [key for key in section_keys(section) if f"`{key}`" not in body]
    assert not missing, f"docs/reference/config.md, [{section}]: undocumented keys {missing}"


def test_config_reference_documents_metadata_sections_and_sweep_keys() -> None:
    text = _read("reference/config.md")
    for name in METADATA_SECTIONS:
        _section(text, f"`[{name}]`")
    sweep = _section(text, "`[sweep]`")
    for key in ("grid", "seeds", "variant"):
        assert f"`{key}`" in sweep


def test_config_reference_documents_every_speed_model() -> None:
    body = _section(_read("reference/config.md"), "Speed models", level=3)
    for kind in speed_kinds():
        keys = SPEED_MODELS[kind].keys()
        row = next((line for line in body.splitlines() if line.startswith(f"| `{kind}` |")), None)
        assert row is not None, f"speed kind {kind!r} has no row in docs/reference/config.md"
        missing = [k for k in keys if f"`{k}`" not in row]
        assert not missing, f"speed kind {kind!r}: keys {missing} missing from its row"


def test_config_examples_are_valid_configs(tmp_path: Path) -> None:
    """Every ```toml block in the docs is a whole, valid config."""
    blocks = [(page, body) for page in PAGES for lang, body in FENCE.findall(page.read_text()) if lang == "toml"]
    assert blocks, "no TOML examples found"
    for page, body in blocks:
        try:
            config_from_dict(tomllib.loads(body), base_dir=tmp_path)
        except (tomllib.TOMLDecodeError, sspsim.SSPSimError) as exc:
            raise AssertionError(f"{page.relative_to(ROOT)}: a TOML example is not a valid config: {exc}") from None


# -- (c) every trace column, and the run directory's other names -------------------------------

def test_trace_reference_documents_every_column() -> None:
    body = _section(_read("reference/trace.md"), "`trace.csv`")
    missing = [c for c in (*TRACE_COLUMNS, "real_compute_time") if f"`{c}`" not in body]
    assert not missing, f"docs/reference/trace.md, trace.csv: undocumented columns {missing}"


def test_trace_reference_documents_run_json_summary_and_evals(tmp_path: Path) -> None:
    """A small simulated run's run.json fields, summary figures and evals.csv columns are all documented."""
    config = config_from_dict({"run": {"clocks": 4, "target": 1.0}, "problem": {"kind": "logistic", "dim": 3, "samples": 40},
                               "workers": {"count": 2}})
    run = sspsim.simulate(config, tmp_path / "run")
    text = _read("reference/trace.md")
    run_json, evals = _section(text, "`run.json`"), _section(text, "`evals.csv`")
    for names, body, what in ((run.meta, run_json, "run.json field"), (run.summary, run_json, "summary figure"),
                              (run.evals.columns, evals, "evals.csv column")):
        missing = [n for n in names if f"`{n}`" not in body]
        assert not missing, f"docs/reference/trace.md: undocumented {what}s {missing}"


# -- (d) every subcommand and its options --------------------------------------------------------

def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from sspsim.cli import _parser

    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_cli_reference_documents_every_subcommand_and_option() -> None:
    text = _read("reference/cli.md")
    shared = _prose(text).split("\n## ", 1)[0]  # the options every config-reading command shares
    commands = _subcommands()
    assert len(commands) >= 9
    for name, parser in commands.items():
        body = _section(text, f"`sspsim {name}`") + shared
        options = [s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"]
        missing = [o for o in options if o not in body]
        assert not missing, f"docs/reference/cli.md, sspsim {name}: undocumented options {missing}"


def test_docs_run_only_real_subcommands() -> None:
    """Every `sspsim WORD` in a shell example names a subcommand (or an option such as --version)."""
    commands = set(_subcommands())
    for page in PAGES:
        for lang, body in FENCE.findall(page.read_text()):
            if lang != "sh":
                continue
            for word in re.findall(r"(?:^|[\s;&|(])sspsim (\S+)", body):
                assert word in commands or word.startswith("-"), f"{page.relative_to(ROOT)}: 'sspsim {word}' is not a subcommand"


# -- (e) links ---------------------------------------------------------------------------------

def test_relative_links_resolve() -> None:
    """Every relative link in README.md and docs/**.md names an existing file inside the repository,
    and its #anchor (into docs) a heading."""
    assert PAGES, "no pages under docs/"
    broken = []
    for page in [ROOT / "README.md", *PAGES]:
        text = page.read_text()
        if "../shared" in text or "DESIGN.md" in text:
            broken.append(f"{page.relative_to(ROOT)}: refers to files outside the repository")
        for target in LINK.findall(_prose(text)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif dest != ROOT and ROOT not in dest.parents:
                broken.append(f"{page.relative_to(ROOT)}: {target} (outside the repository)")
            elif anchor and dest.suffix == ".md" and DOCS in dest.parents and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_index_links_every_page() -> None:
    index = _read("index.md")
    for page in PAGES:
        if page.name != "index.md":
            assert str(page.relative_to(DOCS)) in index, f"docs/index.md does not link {page.relative_to(DOCS)}"
