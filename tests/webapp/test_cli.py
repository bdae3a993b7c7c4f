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
