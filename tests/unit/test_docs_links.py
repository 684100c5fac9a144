"""README stays a short guide, and every link between the repository's documents lands on a file
and, where it names one, a heading that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MOST_LINES = 300
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def heading_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.DOTALL)  # no headings inside code
    return {heading_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def relative_links(document: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.DOTALL)
    return [link for link in LINK.findall(text) if not re.match(r"[a-z]+:", link)]


def test_readme_is_at_most_300_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_MOST_LINES


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_link_between_documents_lands_on_a_file_and_heading(document):
    broken = []
    for link in relative_links(document):
        path, _, anchor = link.partition("#")
        target = (document.parent / path).resolve() if path else document
        missing_heading = anchor and target.suffix == ".md" and anchor not in anchors(target)
        if not target.exists() or missing_heading:
            broken.append(link)
    assert broken == []


def test_a_heading_anchor_is_what_github_makes_of_it():
    assert heading_anchor(" Costume (clothing parsing)") == "costume-clothing-parsing"
    assert heading_anchor(" The costume head: what was tried") == "the-costume-head-what-was-tried"
