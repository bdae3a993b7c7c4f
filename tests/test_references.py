"""The documentation and the code's docstrings and comments name files that exist: a module
moved or removed takes its mentions along. A reference is a path with a directory in it
(`engine/sip/ua.py`, `sip/ua.py`, `engine/sip/`); a bare `ua.py` is not checked."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where the code lives whose comments and docstrings are read.
CODE = ("webapp", "engine", "bench", "fuzz", "deploy", "migrations")
EXTENSIONS = "py|pyx|pxd|md|html|js|css|json|toml|ya?ml|conf|service|sh|ini|mako|po|xml"
#: `some/path/file.py`, `../x.md`, or a directory of the project such as `engine/sip/`.
REFERENCE = re.compile(
    rf"(?<![\w./:@$-])((?:\.\.?/)?(?:[\w.@-]+/)+[\w.@-]+\.(?:{EXTENSIONS})(?![\w/])"
    rf"|(?:{'|'.join(CODE)}|tests|docs)/(?:[\w.-]+/)*(?![\w/.]))"
)
#: Named but never in the repository: where a long fuzzing run keeps its corpus (gitignored),
#: and the design documents beside the project.
ELSEWHERE = ("fuzz/corpus-run/", "../shared/docs/ARCHITECTURE.md")


def prose(path: Path) -> str:
    """A Python module's comments and docstrings (string statements); any other file (Cython's
    too, which `ast` cannot read) whole."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return text
    parts = [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(text).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(text)):
        value = node.value if isinstance(node, ast.Expr) else None
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            parts.append((node.lineno, value.value))
    return "\n".join(part for _, part in sorted(parts))


def sources() -> list[Path]:
    docs = [ROOT / "README.md", ROOT / "fuzz" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    code = [
        p for top in CODE for ext in ("py", "pyx") for p in sorted((ROOT / top).rglob(f"*.{ext}"))
    ]
    return docs + [p for p in code if "__pycache__" not in p.parts]


def exists(reference: str, source: Path, tails: set[str]) -> bool:
    """The reference as a path from the root or from the file naming it, or the tail of a
    project file's path (`sip/ua.py`, `jobs/queues.py`)."""
    if reference in ELSEWHERE:
        return True
    if (ROOT / reference).exists() or (source.parent / reference).exists():
        return True
    return reference.rstrip("/") in tails


def references() -> list[tuple[Path, str]]:
    return [(path, match) for path in sources() for match in REFERENCE.findall(prose(path))]


def test_every_file_the_docs_and_docstrings_name_exists():
    tops = (*CODE, "tests", "docs")
    files = [p.relative_to(ROOT).as_posix() for top in tops for p in (ROOT / top).rglob("*")]
    tails = {"/".join(f.split("/")[i:]) for f in files for i in range(len(f.split("/")))}
    found = references()
    assert len(found) > 500, "the scan finds too few references: is REFERENCE broken?"
    missing = [
        f"{path.relative_to(ROOT)}: {reference}"
        for path, reference in found
        if not exists(reference, path, tails)
    ]
    assert missing == []


def test_the_scan_reads_comments_and_docstrings_and_sees_a_missing_file(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        '"""Wired in webapp/jobs/engines.py."""\n'
        "# see engine/sip/\n"
        'PATH = "engine/not_read.py"  # docs/nowhere.md\n'
    )
    assert REFERENCE.findall(prose(module)) == [
        "webapp/jobs/engines.py",
        "engine/sip/",
        "docs/nowhere.md",
    ]
    assert not exists("docs/nowhere.md", module, set())
