"""The alembic migrations build exactly the models' schema, on every
backend."""

import alembic.command
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from nova_rt.placement import db
from nova_rt.placement import models
from tests.functional.placement import fixtures


def _built_here(dialect):
    """Alembic's filter: what the models build on ``dialect`` (alembic does
    not read an index's ``ddl_if``)."""
    def include(obj, _name, kind, _reflected, _compare_to):
        condition = getattr(obj, '_ddl_if', None)
        return not (kind == 'index' and condition is not None
                    and condition.dialect not in (None, dialect))
    return include


def test_migrations_match_models(db_url):
    assert db.is_at_head(db_url)
    with db.get_engine(db_url).connect() as conn:
        dialect = conn.dialect.name
        diff = compare_metadata(MigrationContext.configure(
            conn, opts={'include_object': _built_here(dialect)}),
            models.Base.metadata)
        indexes = {i['name'] for i in sa.inspect(conn).get_indexes('inventories')}
    assert diff == []
    # The covering index of the candidate query is MySQL's only.
    assert ('ix_inventories_candidates' in indexes) == (dialect == 'mysql')


def test_sync_is_idempotent(db_url):
    assert db.sync(db_url) == db.head()
    assert db.current(db_url) == db.head()


def _fresh(backend, tmp_path):
    if backend == 'sqlite':
        return f'sqlite:///{tmp_path}/upgrade.sqlite', None
    if backend == 'mysql':
        fixtures.require_mysql()
    else:
        fixtures.require_pg()
    url = fixtures.fresh_database(backend)
    return url, url


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql', 'mysql'])
def test_0002_gives_existing_inventories_their_root(backend, tmp_path):
    """A database with providers at 0001 upgrades in place: every inventory
    row learns its provider's root, so the candidate query finds it."""
    url, drop = _fresh(backend, tmp_path)
    try:
        engine = db.get_engine(url)
        with engine.begin() as conn:
            alembic.command.upgrade(db._alembic_config(conn), '0001_initial')
            conn.execute(sa.text(
                "INSERT INTO resource_providers (id, uuid, name, host, "
                "generation, parent_provider_id, root_provider_id) VALUES "
                "(1, 'r', 'root', 'h', 1, NULL, 1), "
                "(2, 'c', 'child', 'h', 1, 1, 1)"))
            conn.execute(sa.text(
                "INSERT INTO inventories (resource_provider_id, "
                "resource_class, total, reserved, min_unit, max_unit, "
                "step_size, allocation_ratio, capacity, used) VALUES "
                "(1, 'VCPU', 8, 0, 1, 8, 1, 1.0, 8, 0), "
                "(2, 'CUSTOM_PCI_X', 2, 0, 1, 2, 1, 1.0, 2, 0)"))
        assert db.current(url) == '0001_initial'
        assert db.sync(url) == db.head()
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                'SELECT resource_provider_id, root_provider_id '
                'FROM inventories ORDER BY resource_provider_id')).all()
        assert [tuple(r) for r in rows] == [(1, 1), (2, 1)]
    finally:
        db.dispose_engines()
        if drop:
            fixtures.drop_database(drop)
