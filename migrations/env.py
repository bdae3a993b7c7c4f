"""Alembic environment, run by Flask-Migrate inside the app context.

The app's engine and metadata are used for autogenerate and for upgrades; the migration
scripts themselves never import application models (they describe the schema as it was
when they were written).
"""

from alembic import context
from flask import current_app

db = current_app.extensions["migrate"].db
metadata = db.metadata
options = {
    "target_metadata": metadata,
    "compare_type": True,
    # SQLite cannot ALTER most things: Alembic's batch mode copies the table instead.
    "render_as_batch": True,
}


def run_offline() -> None:
    url = db.engine.url.render_as_string(hide_password=False)
    context.configure(url=url, literal_binds=True, **options)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    def skip_empty(ctx, revision, directives):
        # `flask db migrate` with no change writes no empty revision file.
        script = directives[0]
        autogenerate = getattr(context.config.cmd_opts, "autogenerate", False)
        if autogenerate and script.upgrade_ops.is_empty():
            directives[:] = []

    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one; with foreign keys
            # on, that drop would cascade (a new column on `tenants` deleting every lead).
            # The pragma only takes effect outside a transaction, so before ours begins; the
            # keys are checked once the migrations are done, and turned on again.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()  # end the transaction SQLAlchemy began for it
        context.configure(
            connection=connection,
            process_revision_directives=skip_empty,
            **{**current_app.extensions["migrate"].configure_args, **options},
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
