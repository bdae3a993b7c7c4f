"""The deployment files in deploy/, checked by the tools that read them: systemd units by
`systemd-analyze verify`, the Compose file by `docker-compose config` (Debian's Compose; `./dev
test` installs it), the nginx site by `nginx -t`, the Compose database's init script by the
real PostgreSQL; and read for what the service depends on. (No image is built here: no
container registry is reachable for the base image, docs/operations.md.)"""

from __future__ import annotations

import base64
import fnmatch
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
    run = subprocess.run(
        ["systemd-analyze", "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
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
    run = subprocess.run(
        [*command, "-f", "docker-compose.yml", "config"],
        cwd=docker,
        capture_output=True,
        text=True,
        timeout=60,
    )
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


def test_the_sip_ports_are_published_and_shown_whole(tmp_path):
    """The engines and the checks' worker each bind in their own part of the SIP port range,
    published 1:1 over UDP (two containers cannot publish one port); the portal shows the
    whole range, and every service gets the public address from .env."""
    from engine.sip.nat import PortRange

    services = _compose_config(tmp_path)["services"]
    whole = PortRange.parse(services["web"]["environment"]["AUTOCALL_SIP_PORTS"])
    assert whole is not None
    parts = []
    for name in ("engines", "default"):
        ports = PortRange.parse(services[name]["environment"]["AUTOCALL_SIP_PORTS"])
        assert ports is not None
        published = set()
        for port in services[name]["ports"]:  # {target, published, protocol} once read
            assert port["protocol"] == "udp"
            assert int(port["published"]) == int(port["target"])
            published.add(int(port["target"]))
        assert published == set(ports)
        parts.append(ports)
    assert sorted(p for part in parts for p in part) == list(whole)
    for name in ("web", "engines", "default"):
        assert "AUTOCALL_SIP_PUBLIC_ADDRESS" in services[name]["environment"]


def test_the_image_builds_the_package_once_and_asks_readyz():
    """The Dockerfile installs the package as a wheel (its extensions compiled once, within
    that build: no second `build_ext`), and its HEALTHCHECK asks /readyz."""
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    instructions = dockerfile.replace("\\\n", " ").splitlines()
    runs = [line for line in instructions if line.startswith("RUN ")]
    assert [run.count("pip install") for run in runs if "pip install" in run] == [1]
    assert "pip install --no-cache-dir ." in dockerfile and "build_ext" not in dockerfile
    [check] = [line for line in instructions if line.startswith("HEALTHCHECK ")]
    assert "http://127.0.0.1:5000/readyz" in check


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides
    (`**/` matches at any depth)."""

    def matches(glob: str, prefix: str) -> bool:
        if glob.startswith("**/"):
            return fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], glob[3:])
        return fnmatch.fnmatchcase(prefix, glob)

    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        if any(matches(pattern.removeprefix("!"), prefix) for prefix in prefixes):
            ignored = not pattern.startswith("!")
    return ignored


def test_the_build_context_has_what_the_image_copies_and_no_secrets():
    """.dockerignore keeps the keys (deploy/docker/.env), a development database (var/), .git
    and .venv out of the build, and lets in every file the Dockerfile copies."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    copied = [
        s
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for s in line.split()[1:-1]
    ]
    assert copied
    for source in copied:
        assert (ROOT / source).exists() and not _dockerignored(source, patterns), source
    for source in ["webapp/__init__.py", "migrations/env.py", "engine/_pacer.pyx"]:
        assert not _dockerignored(source, patterns), source
    kept_out = [
        "deploy/docker/.env",
        "var/autocall.db",
        ".git/config",
        ".venv/bin/python",
        "engine/_pacer.c",
        "webapp/__pycache__/cli.cpython-311.pyc",
        "webapp/translations/ru/LC_MESSAGES/messages.mo",
        "tests/conftest.py",
    ]
    for path in kept_out:
        assert _dockerignored(path, patterns), path


def test_the_upload_folder_is_shared_by_web_and_the_import_worker(tmp_path):
    """Web saves an uploaded lead file; the import job on `default` reads it: one volume at the
    upload folder (AUTOCALL_VAR_DIR/uploads) for both, which the image makes the service
    user's."""
    compose = _compose_config(tmp_path)
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    [var_dir] = re.findall(r"AUTOCALL_VAR_DIR=(\S+)", dockerfile)
    folder = f"{var_dir}/uploads"
    for name in ("web", "default"):
        mounts = compose["services"][name].get("volumes", [])
        targets = {
            (v.split(":")[0], v.split(":")[1]) if isinstance(v, str) else (v["source"], v["target"])
            for v in mounts
        }
        assert ("uploads", folder) in targets, name
    assert "uploads" in compose["volumes"]
    assert re.search(r"install -d -o autocall -g autocall .*\bvar/uploads\b", dockerfile)
    [workdir] = re.findall(r"^WORKDIR (\S+)$", dockerfile.split("\nFROM ")[-1], re.M)
    assert var_dir == f"{workdir}/var" and "\nUSER autocall\n" in dockerfile


def test_the_compose_file_connects_as_an_ordinary_role(tmp_path):
    """The postgres image's POSTGRES_USER is a superuser, which production refuses (row-level
    security would not bind it): the service's role is made by the init script, ordinary."""
    compose = _compose_config(tmp_path)
    postgres = compose["services"]["postgres"]
    url = compose["services"]["web"]["environment"]["AUTOCALL_DATABASE_URL"]
    user = url.split("://")[1].split(":")[0]
    assert postgres["environment"].get("POSTGRES_USER", "postgres") != user
    # `SOURCE:TARGET:MODE` (docker-compose) or {source, target, ...} (the compose plugin)
    mounts = [
        v.split(":")[:2] if isinstance(v, str) else [v["source"], v["target"]]
        for v in postgres["volumes"]
    ]
    [source] = [s for s, target in mounts if target.startswith("/docker-entrypoint-initdb.d/")]
    script = (DEPLOY / "docker" / Path(source).name).read_text()
    assert re.search(rf"CREATE ROLE {user} LOGIN .*NOSUPERUSER NOBYPASSRLS", script)
    assert f"CREATE DATABASE {url.rsplit('/', 1)[1]} OWNER {user};" in script
    assert "-h" in postgres["healthcheck"]["test"]  # over TCP: ready after the init script


def test_the_compose_role_owns_its_database_migrates_it_and_production_accepts_it():
    """postgres-init.sql as the image runs it (psql, as the superuser, stopping at an error),
    on the real PostgreSQL under names of this test's own: the role it makes migrates its
    database from nothing (`autocall db-upgrade` connects as it in Compose) and production
    starts as it."""
    from cryptography.fernet import Fernet

    from tests.conftest import PG_SERVER, app_config
    from webapp import create_app
    from webapp.cli import upgrade_database

    name = f"autocall_compose_{secrets.token_hex(5)}"
    script = re.sub(r"\bautocall\b", name, (DEPLOY / "docker" / "postgres-init.sql").read_text())
    psql = ["psql", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"]
    try:
        run = subprocess.run(psql, input=script, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        url = f"{PG_SERVER.replace('postgres@', f'{name}@')}/{name}"
        production = {
            "env": "production",
            "secret_key": secrets.token_urlsafe(48),
            "encryption_key": Fernet.generate_key().decode(),
            "public_url": "https://autocall.example.com",
        }
        upgrade_database(app_config(url, **production))
        assert create_app(app_config(url, **production)) is not None  # not refused
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE); DROP ROLE IF EXISTS "{name}";'
        subprocess.run([*psql, "-c", drop.split("; ")[0]], capture_output=True, timeout=60)
        subprocess.run([*psql, "-c", drop.split("; ")[1]], capture_output=True, timeout=60)


def test_nginx_accepts_the_site(tmp_path):
    """`nginx -t` on the site inside a minimal main configuration, with a throwaway certificate."""
    site = (DEPLOY / "nginx" / "autocall.conf").read_text()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=autocall.test",
            "-keyout",
            str(tmp_path / "privkey.pem"),
            "-out",
            str(tmp_path / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    site = site.replace("/etc/ssl/autocall/", f"{tmp_path}/")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n"
    )
    run = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


def test_nginx_passes_the_console_stream_unbuffered():
    site = (DEPLOY / "nginx" / "autocall.conf").read_text()
    stream = site[site.index("location = /console/events") :]
    stream = stream[: stream.index("}")]
    assert "proxy_buffering off;" in stream
    timeout = int(re.search(r"proxy_read_timeout (\d+)s;", stream).group(1))
    from webapp.console.views import STREAM_SECONDS

    assert timeout > STREAM_SECONDS  # a stream ends by itself before nginx would cut it
