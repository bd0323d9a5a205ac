"""Invariants of the documentation: the README starts a newcomer, nothing points outside the repository, and
every relative link and image in the README and docs/ leads to a file (and heading) that exists."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted([*(ROOT / "docs").glob("*.md"), *(ROOT / "docs" / "results").glob("*.md")])   # the pages, not study tables
PAGES = [README, *DOCS]

# Folders that hold no shipped text of ours: environments, outputs, data, build products.
SKIP_DIRS = {".git", ".venv", "results", "data", "runs", "build", "__pycache__", ".pytest_cache", "gpu_check"}
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".txt", ".toml", ".cfg", ".sh", ".json"}
# The design notes this project grew from live outside the repository; a clone does not have them. The pattern
# is built from pieces so that this file does not match itself.
OUTSIDE = re.compile(r"\.\./" + "shared" + r"|" + "DESIGN" + r"\.md|/work/" + "shared")


def _shipped_text_files():
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name == "Makefile"):
            yield path


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans (links there are examples, not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _links(page: Path):
    """(target, anchor) of every relative markdown link and image on the page."""
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):        # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        yield path, anchor


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (not - or _), spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.M):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_readme_is_short_and_reaches_make_demo_early():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; at most 300 (depth goes to docs/)"
    assert any("make demo" in line for line in lines[:20]), "`make demo` must be in the README's first 20 lines"


def test_nothing_points_outside_the_repository():
    offenders = []
    for path in _shipped_text_files():
        if path == Path(__file__).resolve():
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "points outside the repository (use docs/science.md or docs/architecture.md):\n" + \
        "\n".join(offenders)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_exists(page):
    broken = []
    for path, anchor in _links(page):
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{path}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{path}#{anchor}: no such heading in {target.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_the_docs_map_lists_every_page():
    listed = {(ROOT / "docs" / path).resolve() for path, _ in _links(ROOT / "docs" / "README.md")}
    missing = [str(p.relative_to(ROOT)) for p in DOCS if p.name != "README.md" and p.resolve() not in listed]
    assert not missing, f"docs/README.md does not list: {missing}"


def test_the_readme_study_yaml_loads(tmp_path):
    """The "Your own study" example is a real experiment file."""
    from harness.study import load_study

    text = README.read_text()
    section = text[text.index("## Your own study"):]
    block = re.search(r"^```yaml\n(.*?)^```", section, flags=re.S | re.M)
    assert block, "no yaml block under '## Your own study'"
    assert len(block.group(1).splitlines()) <= 12
    path = tmp_path / "my_study.yaml"
    path.write_text(block.group(1))
    study = load_study(str(path))
    assert [m.method for m in study.methods] == ["target_only", "cotrain", "truncated"]
