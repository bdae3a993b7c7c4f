"""The deployment files in deploy/: systemd units verified by systemd itself, the Compose file
and the nginx site read for what the service depends on. (Neither Docker's Compose plugin
nor nginx is on this machine; the image is not built here.)"""

from __future__ import annotations

import getpass
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")  # fmt: skip
def test_the_systemd_units_verify(tmp_path):
    """Installed where this checkout is (so ExecStart points at real files), as this user."""
    user = getpass.getuser()
    names = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text().replace("/opt/autocall", str(ROOT))
        text = re.sub(r"^(User|Group)=autocall$", rf"\1={user}", text, flags=re.M)
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text)
        names.append(name)
    run = subprocess.run(["systemd-analyze", "verify", *names], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0 and run.stdout + run.stderr == "", run.stdout + run.stderr
    engines = (DEPLOY / "systemd" / "autocall-engines@.service").read_text()
    assert "KillMode=mixed" in engines and "TimeoutStopSec=120" in engines


def test_the_compose_file_runs_every_process_of_the_service():
    compose = yaml.safe_load((DEPLOY / "docker" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"web", "engines", "default", "cron", "postgres", "redis"}
    for kind in ("engines", "default", "cron"):
        assert services[kind]["command"] == ["python", "-m", "engine.jobs", kind]
    assert "gunicorn -c deploy/gunicorn.conf.py" in " ".join(services["web"]["command"])
    assert services["engines"]["stop_grace_period"] == "120s"
    dockerfile = ROOT / services["web"]["build"]["dockerfile"]
    assert dockerfile.exists() and "build_ext --inplace" in dockerfile.read_text()


def test_nginx_passes_the_console_stream_unbuffered():
    site = (DEPLOY / "nginx" / "autocall.conf").read_text()
    stream = site[site.index("location = /console/events") :]
    stream = stream[: stream.index("}")]
    assert "proxy_buffering off;" in stream
    timeout = int(re.search(r"proxy_read_timeout (\d+)s;", stream).group(1))
    from webapp.console.views import STREAM_SECONDS

    assert timeout > STREAM_SECONDS  # a stream ends by itself before nginx would cut it
