"""The package as a deployment installs it: the wheel built from this source, installed (with
its dependencies) into a fresh virtual environment outside the repository, serves without the
checkout. `autocall db-upgrade` finds the migrations in the package, `autocall run --no-demo`
(gunicorn with the package's settings, the workers, a private Redis) answers /readyz, pages
come in Russian from the catalogue compiled when the wheel was built, and nothing is written
into the installed package."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.ready import wait_until_ready
from tests.test_run_command import free_port

ROOT = Path(__file__).resolve().parent.parent
#: What a fresh clone has: no virtual environment, build output, compiled files or caches.
NOT_SOURCE = shutil.ignore_patterns(
    ".*", "var", "build", "dist", "*.egg-info", "__pycache__", "*.so", "*.c", "*.mo", "corpus-run"
)


def _run(command: list, **kwargs) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _installed_files(package: Path) -> set[Path]:
    return {path for path in package.rglob("*") if "__pycache__" not in path.parts}


@pytest.mark.slow
@pytest.mark.timeout(900)  # a wheel with its Cython extensions, then its dependencies
def test_the_built_wheel_installed_elsewhere_migrates_and_serves(tmp_path):
    source, wheels, venv, workdir = (tmp_path / name for name in ("src", "wheels", "venv", "run"))
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    workdir.mkdir()
    # Nothing of this checkout may leak in: no PYTHONPATH, no settings of ours.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AUTOCALL_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    try:
        _run(
            [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(wheels)],
            env=env,
        )
        [wheel] = wheels.glob("autocall-*.whl")
        _run([sys.executable, "-m", "venv", str(venv)], env=env)
        _run([venv / "bin/python", "-m", "pip", "install", str(wheel)], env=env, cwd=workdir)
        python = venv / "bin/python"
        package = Path(
            _run(
                [python, "-c", "import webapp; print(webapp.__file__)"], env=env, cwd=workdir
            ).strip()
        ).parent
        assert not package.is_relative_to(ROOT) and package.is_relative_to(venv)

        # What travels in the package: migrations, templates, static files, gunicorn's
        # settings, each catalogue compiled (and not its source).
        installed = _installed_files(package)
        relative = {path.relative_to(package) for path in installed}
        migrations = {
            p.relative_to(ROOT / "migrations")
            for p in (ROOT / "migrations").rglob("*")
            if "__pycache__" not in p.parts
        }
        assert {Path("migrations") / p for p in migrations} <= relative
        webapp = ROOT / "webapp"
        pages = {p.relative_to(webapp) for p in [*webapp.rglob("*.html"), *webapp.glob("static/*")]}
        assert pages <= relative
        catalogues = {p.relative_to(webapp) for p in webapp.rglob("*.po")}
        assert catalogues and {p.with_suffix(".mo") for p in catalogues} <= relative
        assert not any(p.suffix == ".po" for p in relative)
        assert Path("gunicorn_conf.py") in relative

        version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
        assert _run([venv / "bin/autocall", "--version"], env=env).strip() == f"autocall {version}"

        env.update(AUTOCALL_VAR_DIR=str(workdir / "var"))
        upgrade = _run([venv / "bin/autocall", "db-upgrade"], env=env, cwd=workdir)
        assert "The database schema is up to date." in upgrade

        port = free_port()
        env.update(AUTOCALL_WEB_PORT=str(port))
        run = subprocess.Popen(
            [venv / "bin/autocall", "run", "--no-demo"],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            process_group=0,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(base, run, 90)
            request = urllib.request.Request(f"{base}/login", headers={"Accept-Language": "ru"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert "Войти" in answer.read().decode()
        finally:
            os.killpg(run.pid, signal.SIGINT)  # Ctrl-C
            try:
                output, _ = run.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                output, _ = run.communicate()
        assert run.returncode == 0, output[-3000:]
        assert "Traceback" not in output, output[-3000:]
        assert _installed_files(package) == installed  # start-up wrote nothing there
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)  # a virtual environment is large
