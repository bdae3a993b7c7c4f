"""The packages' layers: `engine/` is self-contained and imports nothing of `webapp` (the
web side's `webapp/jobs/` wires the two), and a web process that only touches a queue does
not load the engine host."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"

#: An import line of a Cython module (`ast` cannot read them).
CYTHON_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(\S+)[ \t]+c?import\b|c?import[ \t]+([^#\n]+))", re.MULTILINE
)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a module, nested ones (inside functions) included."""
    if path.suffix in (".pyx", ".pxd"):
        text = path.read_text()
        found = []
        for match in CYTHON_IMPORT.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            names = [match.group(1)] if match.group(1) else match.group(2).split(",")
            found += [(line, name.split()[0]) for name in names if name.strip()]
        return found
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def engine_modules() -> list[Path]:
    return sorted(p for ext in ("py", "pyx", "pxd") for p in ENGINE.rglob(f"*.{ext}"))


def test_the_engine_imports_nothing_of_the_web_side():
    modules = engine_modules()
    assert ENGINE / "host.py" in modules and ENGINE / "sip" / "_parser.pyx" in modules
    offending = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in modules
        for line, module in imported_modules(path)
        if module == "webapp" or module.startswith("webapp.")
    ]
    assert offending == []


def test_the_rule_sees_nested_and_cython_imports(tmp_path):
    module = tmp_path / "wiring.py"
    module.write_text("def config():\n    from webapp.config import Config\n    import webapp\n")
    assert sorted(imported_modules(module)) == [(2, "webapp.config"), (3, "webapp")]
    cython = tmp_path / "fast.pyx"
    cython.write_text("cimport cython\nfrom libc.stdint cimport uint8_t\nimport os, webapp as w\n")
    assert imported_modules(cython) == [(1, "cython"), (2, "libc.stdint"), (3, "os"), (3, "webapp")]


def test_touching_a_queue_loads_no_engine_host():
    """The portal enqueues jobs, lists queues and workers (staff's ops page, /readyz) and
    watches its jobs without loading the engine host, its dialer or the pacer."""
    code = (
        "import sys\n"
        "import webapp.health, webapp.jobs.queues, webapp.jobs.watched, webapp.staff.reports\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('engine'))))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(run.stdout.split())
    assert "engine.bus" in loaded  # staff's ops read the hosts' heartbeats: the check sees it
    assert loaded.isdisjoint({"engine.host", "engine.dialer", "engine.pacer"}), loaded
