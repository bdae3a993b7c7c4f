"""Services are the floor (docs/architecture.md, "What each part may import"): no module of
webapp/services/ imports a blueprint (pages, the API) or the jobs above it (the webhooks'
delivery, the worker processes' wiring), nor reads the request; importing every service
loads none of them, so the engine's host process (webapp/services/dialing.py) imports no
route."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from rq.utils import import_attribute

ROOT = Path(__file__).resolve().parents[1]
WEBAPP = ROOT / "webapp"
SERVICES = sorted((WEBAPP / "services").glob("*.py"))
#: The blueprints as the brief of issue 16 names them; `blueprint_packages` must find them all.
KNOWN_BLUEPRINTS = {
    "webapp.api",
    "webapp.auth",
    "webapp.campaigns",
    "webapp.console",
    "webapp.donotcall",
    "webapp.leads",
    "webapp.live",
    "webapp.operators",
    "webapp.pages",
    "webapp.people",
    "webapp.reports",
    "webapp.settings",
    "webapp.staff",
}
#: Above the services though not blueprints: the webhooks' delivery jobs, and the wiring of
#: the worker processes (webapp/jobs/queues.py, the queues and a job's context, is below).
JOBS_ABOVE = {
    "webapp.webhooks",
    "webapp.jobs.engines",
    "webapp.jobs.schedule",
    "webapp.jobs.worker",
}
#: What only a request has: a service takes the user, the tenant, the form as arguments.
REQUEST_OBJECTS = {
    ("flask", "request"),
    ("flask", "session"),
    ("flask", "g"),
    ("flask_login", "current_user"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def blueprint_packages() -> set[str]:
    """`webapp.<name>` for every package or module of webapp/ that makes a Flask Blueprint."""
    found = set()
    for path in WEBAPP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name == "Blueprint":
                    found.add(".".join(module_name(path).split(".")[:2]))
    return found


def imported(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) of every import in the file, in functions too; `from
    webapp import reports` is (line, "webapp.reports", None)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                out.append((node.lineno, node.module, alias.name))
                out.append((node.lineno, f"{node.module}.{alias.name}", None))
    return out


def within(module: str, packages: set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_blueprints_and_the_jobs_above_are_found():
    assert blueprint_packages() >= KNOWN_BLUEPRINTS
    assert all(
        (ROOT / Path(*name.split("."))).with_suffix(".py").exists()
        or (ROOT / Path(*name.split("."))).is_dir()
        for name in JOBS_ABOVE
    )
    assert WEBAPP / "services" / "dialing.py" in SERVICES


def test_no_service_imports_a_blueprint_or_the_jobs_above():
    above = blueprint_packages() | JOBS_ABOVE
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in SERVICES
        for line, module, _name in imported(path)
        if within(module, above)
    ]
    assert wrong == []


def test_no_service_reads_the_request():
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}.{name}"
        for path in SERVICES
        for line, module, name in imported(path)
        if (module, name) in REQUEST_OBJECTS
    ]
    assert wrong == []


def test_importing_every_service_loads_no_blueprint():
    """The whole chain of imports, in a fresh interpreter: what the engine's host process
    loads with its store."""
    names = [module_name(path) for path in SERVICES]
    code = f"import sys\nfor name in {names!r}: __import__(name)\nprint(*sorted(sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    above = blueprint_packages() | JOBS_ABOVE
    assert [name for name in loaded if within(name, above)] == []
    assert "webapp.services.dialing" in loaded


def test_the_outbox_names_the_delivery_job_that_exists():
    """The outbox enqueues the job by its path, not by importing it."""
    from webapp.services.webhooks import DELIVER
    from webapp.webhooks import delivery

    assert import_attribute(DELIVER) is delivery.deliver
