"""alembic environment: always run programmatically by ``db.sync``.

The caller hands an open connection in ``config.attributes['connection']``,
so no URL (and no password) ever goes through alembic's ini interpolation.
"""

from alembic import context

from nova_rt.placement import models

target_metadata = models.Base.metadata


def run_migrations_online():
    connection = context.config.attributes['connection']
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == 'sqlite')
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit('offline migrations are not supported; use '
                     'nova-rt-manage db sync')
run_migrations_online()
