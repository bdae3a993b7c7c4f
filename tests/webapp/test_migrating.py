"""Progress of long migrations: `autocall db-upgrade` names each migration as it ends, and
data migrations go over big tables in batches and say how far they got (SQLite and
PostgreSQL)."""

from sqlalchemy import create_engine, text

from webapp.cli import main, upgrade_database
from webapp.migrating import in_batches


def test_db_upgrade_prints_each_migration_with_its_time(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOCALL_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert main(["db-upgrade"]) == 0
    out = capsys.readouterr().out.splitlines()
    from webapp import MIGRATIONS_DIR

    versions = sorted(p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("0*.py"))
    assert out[0] == (
        f"Upgrading the database from nothing to {versions[-1]}: {len(versions)} migration(s)."
    )
    steps = [line.split()[0] for line in out[1:-2]]
    assert steps == versions  # oldest first, each once
    assert out[1].startswith("  0001 Create tenants") and out[1].endswith(" s)")
    # A description over several lines is printed whole, on one line.
    assert next(line for line in out if line.startswith("  0007 ")).startswith(
        "  0007 What the operator records when they finish a lead: a result from the tenant's "
        "list, and a comment. ("
    )
    assert out[-2].startswith("Done in ") and out[-1] == "The database schema is up to date."
    assert main(["db-upgrade"]) == 0  # nothing to run: nothing but the last line
    assert capsys.readouterr().out.splitlines() == ["The database schema is up to date."]


def test_upgrade_without_progress_says_nothing(tmp_path, capsys):
    from tests.conftest import app_config

    upgrade_database(app_config(f"sqlite:///{tmp_path / 'quiet.db'}"))
    assert capsys.readouterr().out == ""


def _numbers_table(url: str, rows: int):
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS numbers"))
        connection.execute(text("CREATE TABLE numbers (id INTEGER PRIMARY KEY, doubled INTEGER)"))
        connection.execute(
            text("INSERT INTO numbers (id) VALUES (:id)"), [{"id": i} for i in range(3, 3 + rows)]
        )
    return engine


def test_a_data_migration_in_batches_covers_every_row_and_reports(database_url):
    engine = _numbers_table(database_url, 25_000)
    lines, ranges = [], []
    with engine.begin() as connection:

        def work(low, high):
            ranges.append((low, high))
            connection.execute(
                text("UPDATE numbers SET doubled = 2 * id WHERE id >= :low AND id < :high"),
                {"low": low, "high": high},
            )

        batches = in_batches(connection, "numbers", work, size=10_000, say=lines.append, every=3600)
    assert batches == 3
    assert ranges == [(3, 10_003), (10_003, 20_003), (20_003, 25_003)]
    with engine.connect() as connection:
        wrong = connection.execute(
            text("SELECT count(*) FROM numbers WHERE doubled IS NULL OR doubled != 2 * id")
        ).scalar()
    assert wrong == 0
    # The first batch and the end are always told; in between, at most every `every` s.
    assert len(lines) == 2
    assert lines[0].startswith("numbers: id 10002 of 25002 (40%), ")
    assert lines[1].startswith("numbers: id 25002 of 25002 (100%), ")
    assert lines[1].endswith("about 0 s left")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM numbers"))
        assert in_batches(connection, "numbers", work, say=lines.append) == 0
        connection.execute(text("DROP TABLE numbers"))
    assert lines[-1] == "numbers: empty, nothing to do"
    engine.dispose()
