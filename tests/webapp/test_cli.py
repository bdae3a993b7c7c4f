"""The `autocall` command line."""

import sqlite3

import pytest

from webapp.cli import build_parser, main


def test_db_upgrade_builds_the_schema_from_nothing(tmp_path, monkeypatch, capsys):
    path = tmp_path / "fresh.db"
    monkeypatch.setenv("AUTOCALL_DATABASE_URL", f"sqlite:///{path}")
    assert main(["db-upgrade"]) == 0
    assert "up to date" in capsys.readouterr().out
    tables = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert {"tenants", "users", "operators", "teams", "leads", "attempts"} <= tables
    assert main(["db-upgrade"]) == 0  # a second run changes nothing


def test_create_staff(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOCALL_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    main(["db-upgrade"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: "staff password 1")
    assert main(["create-staff", "ops@autocall.example"]) == 0
    assert main(["create-staff", "ops@autocall.example"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_help_lists_the_commands():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])


def test_version_is_the_installed_package_s(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"autocall {version('autocall')}\n"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_test_call_prints_one_json_line_and_exits_0(pbx, transport):
    import json
    import subprocess
    import sys

    peer = pbx("transfer_ok.xml", transport={"udp": "u1", "tcp": "t1"}[transport])
    command = [
        sys.executable,
        "-m",
        "webapp.cli",
        "test-call",
        "--pbx",
        f"127.0.0.1:{peer.port}",
        "--user",
        "acme",
        "--password",
        "s3cret",
        "--number",
        "+79161234567",
        "--refer-to",
        "101",
        "--local-host",
        "127.0.0.1",
        "--ring-timeout",
        "5",
        "--transport",
        transport,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert (result["outcome"], result["transfer_result"], result["refer_to"]) == (
        "answered",
        "succeeded",
        f"sip:101@127.0.0.1:{peer.port}",
    )
    assert peer.wait().succeeded


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--pbx", "pbx:x"], "is not HOST, HOST:PORT"),
        (["--pbx", "pbx", "--dial-format", "{phone}@{host}"], "Unknown macro {phone}"),
        (["--pbx", "pbx", "--refer-format", "{extension"], "never closed"),
        (["--pbx", "pbx", "--ring-timeout", "soon"], "invalid float value"),
        (["--pbx", "pbx", "--transport", "sctp"], "invalid choice: 'sctp'"),
        (["--pbx", "pbx", "--transport", "tcp", "--sips"], "--sips needs --transport tls"),
        (["--pbx", "pbx", "--ca-file", "/nonexistent/ca.pem"], "cannot read --ca-file"),
    ],
)
def test_test_call_bad_arguments_exit_2_saying_why(arguments, complaint, capsys):
    base = ["test-call", "--user", "u", "--number", "1", "--refer-to", "101"]
    try:
        status = main(base + arguments)
    except SystemExit as exit:
        status = exit.code
    assert status == 2
    assert complaint in capsys.readouterr().err


def test_test_call_through_a_saved_sip_account(tmp_path, monkeypatch, capsys, pbx):
    """`--tenant ID --account NAME`: the PBX, username and formats saved in the portal; the
    tenant's first account without `--account`; a name it has not, or a tenant that is not,
    exit 2 saying so."""
    import json

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import SipAccount
    from webapp.services.accounts import create_tenant_with_admin

    monkeypatch.setenv("AUTOCALL_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    main(["db-upgrade"])
    capsys.readouterr()
    peer = pbx("transfer_ok.xml", transport="t1")  # the saved account speaks TCP
    with create_app(serving=False).app_context():
        tenant_id = create_tenant_with_admin("Acme", "admin@acme.example", "a password 1").tenant.id
        for name, port in (("Unused", 9), ("Trunk", peer.port)):
            db.session.add(
                SipAccount(
                    tenant_id=tenant_id,
                    name=name,
                    host="127.0.0.1",
                    port=port,
                    username="acme",
                    dial_format="+{number}@{host}:{port}",
                    refer_format="{extension}@{host}:{port}",
                    transport="tcp",
                )
            )
        db.session.commit()
    base = ["test-call", "--number", "+79161234567", "--refer-to", "101"]
    local = ["--local-host", "127.0.0.1", "--ring-timeout", "5"]
    assert main([*base, "--tenant", str(tenant_id), "--account", "Trunk", *local]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["outcome"], result["transfer_result"], result["refer_to"]) == (
        "answered",
        "succeeded",
        f"sip:101@127.0.0.1:{peer.port}",
    )
    assert result["dialed_uri"] == f"sip:+79161234567@127.0.0.1:{peer.port}"
    assert peer.wait().succeeded
    assert main([*base, "--tenant", str(tenant_id), "--account", "Other"]) == 2
    assert f"tenant {tenant_id} has no SIP account named 'Other'" in capsys.readouterr().err
    assert main([*base, "--tenant", "999999"]) == 2
    assert "there is no tenant 999999" in capsys.readouterr().err
    assert main([*base, "--tenant", str(tenant_id), "--pbx", "pbx", "--user", "u"]) == 2
    assert "give --pbx (and --user), or --tenant" in capsys.readouterr().err
