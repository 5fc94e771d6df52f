"""The documentation's links: every relative link in README.md and docs/ leads somewhere.

A link to a file must name an existing file or folder; a link with ``#anchor`` into a markdown
file must name one of its headings, by GitHub's rule for heading anchors. The README is the
front door and stays short (at most ``README_MAX_LINES`` lines); the rest lives in docs/.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 300

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files(root: Path = ROOT) -> list[Path]:
    """README.md and every markdown file under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def _prose(text: str, *, code_spans: bool = False) -> str:
    """The text outside fenced code blocks, and outside inline code spans unless ``code_spans``
    (links in code are not links; a heading's code is part of its text)."""
    kept, fence = [], None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
            kept.append("")
        elif fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) <= {fence[0]}:
                fence = None
            kept.append("")
        else:
            kept.append(line)
    prose = "\n".join(kept)
    return prose if code_spans else _INLINE_CODE.sub(lambda m: " " * len(m.group(0)), prose)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lower-cased, punctuation dropped, spaces to -.

    Letters, digits, ``_`` and ``-`` are kept (so ``stream_eval`` stays), other punctuation
    (backticks, parentheses, dots, asterisks) goes, and each space becomes one hyphen.
    """
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    slug = []
    for char in text.strip().lower():
        if char == " " or char == "-":
            slug.append("-")
        elif char == "_" or unicodedata.category(char)[0] in ("L", "N", "M"):
            slug.append(char)
    return "".join(slug)


def anchors(path: Path) -> set[str]:
    """Every anchor of a markdown file: its headings' slugs (repeats get -1, -2, ...) and any
    explicit ``<a name>`` / ``<a id>``."""
    seen: dict[str, int] = {}
    found = set()
    text = path.read_text(encoding="utf-8")
    for line in _prose(text, code_spans=True).split("\n"):
        match = _HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    found.update(_HTML_ANCHOR.findall(text))
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """The (line number, target) of every inline link, image and reference definition."""
    prose = _prose(path.read_text(encoding="utf-8"))
    found = []
    for pattern, group in ((_LINK, 2), (_REFERENCE, 1)):
        for match in pattern.finditer(prose):
            line = prose.count("\n", 0, match.start()) + 1
            found.append((line, match.group(group)))
    return sorted(found)


def broken_links(paths: list[Path]) -> list[str]:
    """One line per relative link in ``paths`` whose file, or heading, does not exist."""
    problems = []
    for path in paths:
        for line, target in links(path):
            if not target or _SCHEME.match(target) or target.startswith("//"):
                continue  # absolute URLs (https:, mailto:) are not checked offline
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f"{path}:{line}: {target}"
            if not dest.exists():
                problems.append(f"{where}: no such file {dest}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where}: no heading with the anchor #{anchor} in {dest.name}")
    return problems


def test_every_relative_link_in_the_readme_and_docs_leads_somewhere():
    problems = broken_links(markdown_files())
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_readme_is_a_short_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_every_docs_page_is_reachable_from_the_readme():
    """A page nobody links to is a page nobody finds: follow the links from README.md."""
    reached, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in reached:
            continue
        reached.add(page)
        for _, target in links(page):
            file_part = target.partition("#")[0]
            if file_part.endswith(".md") and not _SCHEME.match(file_part):
                dest = (page.parent / file_part).resolve()
                if dest.exists():
                    todo.append(dest)
    missing = [str(p.relative_to(ROOT)) for p in markdown_files()[1:] if p.resolve() not in reached]
    assert not missing, f"docs pages no link leads to from README.md: {missing}"


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Sources (`download`)", "sources-download"),
        (
            "Streaming (`synthesize_stream`, `stream_eval`)",
            "streaming-synthesize_stream-stream_eval",
        ),
        ("Microcontroller export (`model_data.cc`)", "microcontroller-export-model_datacc"),
        ("GPUs, several GPUs, mixed precision", "gpus-several-gpus-mixed-precision"),
        ("One model, one `dvc repro`", "one-model-one-dvc-repro"),
        ("Train on [your words](docs/data.md)", "train-on-your-words"),
        ("k-fold: 95.4%", "k-fold-954"),
    ],
)
def test_github_slug_follows_githubs_rule(heading, slug):
    assert github_slug(heading) == slug


def test_the_checker_finds_a_missing_file_a_missing_heading_and_ignores_code(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n\n## A section\n")
    (tmp_path / "pic.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md#a-section) [repeat](other.md#a-section-1) ![img](pic.png)\n"
        "[self](#page) [web](https://example.org/nowhere.md)\n"
        "[gone](missing.md) and [wrong\nheading](other.md#no-such-section)\n"
        "![lost picture](img/none.png)\n"
        "`[in code](nothere.md)`\n\n"
        "```\n[in a block](nothere.md)\n```\n\n"
        "[ref]: also-missing.md\n"
    )
    problems = broken_links([page])
    assert len(problems) == 4, problems
    assert any("missing.md: no such file" in p for p in problems)
    assert any("#no-such-section" in p and ":5:" in p for p in problems)
    assert any("img/none.png" in p for p in problems)
    assert any("also-missing.md" in p for p in problems)
    assert not any("nothere" in p for p in problems)
