"""The deployment files in deploy/, checked by the tools that read them: systemd units by
`systemd-analyze verify`, the Compose file by `docker-compose config` (Debian's Compose; `./dev
test` installs it), the nginx site by `nginx -t`; and read for what the service depends on.
(No Docker daemon here: the image itself is not built.)"""

from __future__ import annotations

import base64
import getpass
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


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


def test_every_worker_kind_has_a_unit():
    """One unit per kind of worker that `autocall worker` starts, webhooks included."""
    from webapp.config import Config
    from webapp.launcher import worker_commands

    kinds = {command[-1] for command in worker_commands(Config())}
    assert kinds == {"engines", "default", "webhooks", "cron"}
    for kind in kinds:
        name = "autocall-engines@.service" if kind == "engines" else f"autocall-{kind}.service"
        unit = (DEPLOY / "systemd" / name).read_text()
        assert f"ExecStart=/opt/autocall/.venv/bin/python -m webapp.jobs {kind}\n" in unit


def _compose_config(tmp_path) -> dict:
    """The Compose file as Compose itself reads it, from a copy beside an example .env."""
    docker = tmp_path / "deploy" / "docker"
    shutil.copytree(DEPLOY / "docker", docker)
    example = (docker / "env.example").read_text()
    filled = {
        "AUTOCALL_SECRET_KEY": secrets.token_urlsafe(48),
        "AUTOCALL_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AUTOCALL_PUBLIC_URL": "https://autocall.example.com",
    }
    for name, value in filled.items():  # as the example's comments tell a deployer to
        assert f"\n{name}=\n" in example
        example = example.replace(f"\n{name}=\n", f"\n{name}={value}\n")
    (docker / ".env").write_text(example)
    command = ["docker", "compose"] if _has_compose_plugin() else ["docker-compose"]
    run = subprocess.run([*command, "-f", "docker-compose.yml", "config"], cwd=docker,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return yaml.safe_load(run.stdout)


def _has_compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    run = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return run.returncode == 0


def test_the_compose_file_runs_every_process_of_the_service(tmp_path):
    compose = _compose_config(tmp_path)
    services = compose["services"]
    assert set(services) == {"web", "engines", "default", "webhooks", "cron", "postgres", "redis"}
    for kind in ("engines", "default", "webhooks", "cron"):
        assert services[kind]["command"] == ["python", "-m", "webapp.jobs", kind]
    assert "gunicorn -c deploy/gunicorn.conf.py" in " ".join(services["web"]["command"])
    assert services["engines"]["stop_grace_period"] in ("120s", "2m0s", 120)
    for name in ("web", "engines", "default", "webhooks", "cron"):
        environment = services[name]["environment"]
        assert environment["AUTOCALL_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert environment["AUTOCALL_SECRET_KEY"] and environment["AUTOCALL_ENCRYPTION_KEY"]
        assert environment["AUTOCALL_PUBLIC_URL"] == "https://autocall.example.com"
    dockerfile = ROOT / "deploy" / "docker" / "Dockerfile"
    assert dockerfile.exists() and "build_ext --inplace" in dockerfile.read_text()


def test_the_compose_file_connects_as_an_ordinary_role(tmp_path):
    """The postgres image's POSTGRES_USER is a superuser, which production refuses (row-level
    security would not bind it): the service's role is made by the init script, ordinary."""
    compose = _compose_config(tmp_path)
    postgres = compose["services"]["postgres"]
    url = compose["services"]["web"]["environment"]["AUTOCALL_DATABASE_URL"]
    user = url.split("://")[1].split(":")[0]
    assert postgres["environment"].get("POSTGRES_USER", "postgres") != user
    # `SOURCE:TARGET:MODE` (docker-compose) or {source, target, ...} (the compose plugin)
    mounts = [v.split(":")[:2] if isinstance(v, str) else [v["source"], v["target"]]
              for v in postgres["volumes"]]  # fmt: skip
    [source] = [s for s, target in mounts if target.startswith("/docker-entrypoint-initdb.d/")]
    script = (DEPLOY / "docker" / Path(source).name).read_text()
    assert re.search(rf"CREATE ROLE {user} LOGIN .*NOSUPERUSER NOBYPASSRLS", script)
    assert f"CREATE DATABASE {url.rsplit('/', 1)[1]} OWNER {user};" in script
    assert "-h" in postgres["healthcheck"]["test"]  # over TCP: ready after the init script


def test_nginx_accepts_the_site(tmp_path):
    """`nginx -t` on the site inside a minimal main configuration, with a throwaway certificate."""
    site = (DEPLOY / "nginx" / "autocall.conf").read_text()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=autocall.test", "-keyout", str(tmp_path / "privkey.pem"),
                    "-out", str(tmp_path / "fullchain.pem")],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    site = site.replace("/etc/ssl/autocall/", f"{tmp_path}/")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n"
    )
    run = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr


def test_nginx_passes_the_console_stream_unbuffered():
    site = (DEPLOY / "nginx" / "autocall.conf").read_text()
    stream = site[site.index("location = /console/events") :]
    stream = stream[: stream.index("}")]
    assert "proxy_buffering off;" in stream
    timeout = int(re.search(r"proxy_read_timeout (\d+)s;", stream).group(1))
    from webapp.console.views import STREAM_SECONDS

    assert timeout > STREAM_SECONDS  # a stream ends by itself before nginx would cut it
