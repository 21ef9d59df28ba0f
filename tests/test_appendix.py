"""The appendix pages the other pages lean on: the paper map's status column and the notation table.

The paper map gives each claim of the paper one of four statuses and names the chapter section that checks
it; these tests fail when a status outside the four creeps in, when a chapter drops out of the map, or when
the notation appendix lets one symbol stand for two things.
"""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAPER_MAP = ROOT / "appendix" / "paper_map.md"
NOTATION = ROOT / "appendix" / "notation.md"
STATUSES = {"reproduced", "reproduced with a caveat", "contradicted", "not checked"}


def _tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table of ``text`` as (header cells, body rows of cells); HTML comments removed."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif block:
            if len(block) >= 2 and all(set(c) <= set("-: ") for c in block[1]):
                tables.append((block[0], block[2:]))
            block = []
    return tables


def _status_rows(text: str) -> list[dict[str, str]]:
    rows = []
    for header, body in _tables(text):
        if "Status" in header:
            rows += [dict(zip(header, r, strict=True)) for r in body]
    return rows


def test_tables_are_parsed():
    """The parser on a made-up page: comments dropped, a status table found, other tables ignored."""
    page = (
        "| A | B |\n|---|---|\n| 1 | 2 |\n\ntext\n\n| Claim | Status |\n|---|---|\n| x | reproduced <!-- TODO --> |\n"
    )
    assert _status_rows(page) == [{"Claim": "x", "Status": "reproduced"}]


def test_paper_map_uses_only_the_four_statuses():
    rows = _status_rows(PAPER_MAP.read_text(encoding="utf-8"))
    assert len(rows) >= 20, f"the paper map's status table has only {len(rows)} rows"
    bad = [(r.get("Claim", "?")[:60], r["Status"]) for r in rows if r["Status"] not in STATUSES]
    assert not bad, f"statuses outside {sorted(STATUSES)}: {bad}"
    assert {r["Status"] for r in rows} >= {"reproduced", "reproduced with a caveat", "contradicted", "not checked"}


def test_every_claim_names_what_checks_it():
    """'Checked by' names a chapter section (§N.M), a test file or an lnfl function, or says nothing does."""
    for r in _status_rows(PAPER_MAP.read_text(encoding="utf-8")):
        cell = r["Checked by"]
        named = re.search(r"§\d+\.\d+|tests/test_\w+\.py|\{py:func\}", cell)
        assert named or (r["Status"] == "not checked" and cell == "—"), f"{r['Claim'][:60]}: checked by {cell!r}"


def test_every_chapter_appears_in_the_paper_map():
    rows = _status_rows(PAPER_MAP.read_text(encoding="utf-8"))
    cited = " ".join(r["Checked by"] for r in rows)
    chapters = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    assert len(chapters) >= 11
    for nb in chapters:
        assert f"/chapters/{nb.stem}`" in cited, f"no claim of the paper map is checked in {nb.stem}"


def test_paper_map_opens_with_how_the_boxes_were_written():
    text = PAPER_MAP.read_text(encoding="utf-8")
    first = text.split("\n## ", 2)[1]
    assert first.startswith("How the theorem boxes were written")
    for word in ("abstract", "summaries", "reviews", "reconstructed"):
        assert word in first, f"the provenance section does not mention {word!r}"


def test_cifar10_status_is_stated():
    rows = _status_rows(PAPER_MAP.read_text(encoding="utf-8"))
    cifar = [r for r in rows if "CIFAR-10" in r["Claim"]]
    assert cifar and all(r["Status"] == "not checked" for r in cifar), "CIFAR-10 was not run for this book"


def test_notation_gives_each_symbol_one_meaning():
    """In the notation appendix every symbol (first column) appears in one row only."""
    symbols = [
        row[0]
        for header, body in _tables(NOTATION.read_text(encoding="utf-8"))
        if header and header[0] == "Symbol"
        for row in body
    ]
    assert len(symbols) >= 80, "the notation appendix lists too few symbols"
    repeated = sorted({s for s in symbols if symbols.count(s) > 1})
    assert not repeated, f"symbols listed twice: {repeated}"


def test_notation_lists_the_clocks():
    text = NOTATION.read_text(encoding="utf-8")
    for symbol in ("$T_1$", "$T_{1/2}$", "$t_{\\mathrm{fit}}$", "$t_{\\mathrm{ES}}$", "$\\hat\\tau_+$", "$K$"):
        assert f"| {symbol}" in text, f"{symbol} is missing from the notation appendix"
    assert "t1_hat" not in text and "\\hat T" not in text, "the old end-of-Stage-I names are gone"
