"""The documentation's own links lead somewhere: every relative Markdown link in README.md and
docs/*.md names a file that exists and, with `#anchor`, a heading of that file, as GitHub
makes anchors of headings. tests/test_references.py checks paths written with a directory
(`docs/sip.md`); this checks the links between pages (`[sip.md](sip.md#transports)`) and the
anchors, which it does not."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: `[text](target)`; a target has no spaces (a title after one is not used here).
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose(path: Path) -> str:
    """The page without its fenced code blocks (configuration samples are not links)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (hyphens and
    underscores kept), spaces made hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(prose(path)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for target in LINK.findall(prose(path)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        name, _, anchor = target.partition("#")
        linked = (path.parent / name).resolve() if name else path
        if not linked.exists():
            found.append(f"{path.relative_to(root)}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            found.append(f"{path.relative_to(root)}: {target} (no such heading)")
    return found


def test_every_link_between_the_pages_resolves():
    links = sum(len(LINK.findall(prose(path))) for path in pages())
    assert links > 30, "the scan finds too few links: is LINK broken?"
    assert [problem for path in pages() for problem in broken(path)] == []


def test_the_guide_for_tenants_is_linked_from_readme_and_the_sip_accounts_section():
    readme = prose(ROOT / "README.md")
    assert "](docs/pbx-setup.md)" in readme
    portal = prose(ROOT / "docs" / "portal.md")
    section = portal[portal.index("## SIP accounts") :]
    section = section[: section.index("\n## ", 1)]
    assert "](pbx-setup.md)" in section


def test_slugs_and_a_missing_anchor_are_seen(tmp_path):
    assert slug("Finding the PBX: DNS (RFC 3263)") == "finding-the-pbx-dns-rfc-3263"
    assert slug("Campaigns and operators (`engine/campaigns.py`)") == (
        "campaigns-and-operators-enginecampaignspy"
    )
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Part\n\n## Part\n\n[a](#part-1) [b](#nowhere) [c](other.md)\n"
        "```\n[not a link](#inside-code)\n```\n"
    )
    assert broken(page, tmp_path) == [
        "page.md: #nowhere (no such heading)",
        "page.md: other.md (no such file)",
    ]
