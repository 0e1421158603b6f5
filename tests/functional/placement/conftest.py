import uuid

import pytest

from nova_rt.placement import db
from tests.functional.placement import fixtures
from tests.functional.placement import helpers
from tests.functional.placement.fixtures import placement_rpc  # noqa: F401


@pytest.fixture(scope='session')
def pg_url():
    fixtures.require_pg()
    url = fixtures.fresh_pg_database()
    try:
        db.sync(url)
        yield url
    finally:
        fixtures.drop_pg_database(url)


@pytest.fixture(scope='session')
def sqlite_url(tmp_path_factory):
    url = f'sqlite:///{tmp_path_factory.mktemp("placement")}/placement.sqlite'
    db.sync(url)
    return url


@pytest.fixture(params=['sqlite', 'postgresql'])
def db_url(request):
    """The placement database on each backend, emptied for every test."""
    url = request.getfixturevalue(
        'pg_url' if request.param == 'postgresql' else 'sqlite_url')
    with db.get_engine(url).begin() as conn:
        helpers.empty_tables(conn)
    return url


@pytest.fixture
def new_uuid():
    return lambda: str(uuid.uuid4())


@pytest.fixture
def conf():
    # A fresh class per test: tests may change the options.
    return type('Conf', (), {'placement': type('P', (), {
        'heartbeat_timeout': 60, 'candidate_order': 'spread'})})()


@pytest.fixture
def mgr(db_url, conf):
    from nova_rt.placement import manager
    return manager.PlacementManager(db.get_engine(db_url), conf)
