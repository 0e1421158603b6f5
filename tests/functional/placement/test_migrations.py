"""The alembic migrations build exactly the models' schema, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from nova_rt.placement import db
from nova_rt.placement import models


def test_migrations_match_models(db_url):
    assert db.is_at_head(db_url)
    with db.get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn),
                                models.Base.metadata)
    assert diff == []


def test_sync_is_idempotent(db_url):
    assert db.sync(db_url) == db.head()
    assert db.current(db_url) == db.head()
