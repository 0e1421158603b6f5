import uuid

import pytest

from nova_rt.placement import db
from tests.functional.placement import fixtures
from tests.functional.placement import helpers
from tests.functional.placement.fixtures import placement_rpc  # noqa: F401


def _synced_database(backend: str):
    """A fresh database of the session on that server, synced, dropped at
    the end."""
    url = fixtures.fresh_database(backend)
    try:
        db.sync(url)
        yield url
    finally:
        fixtures.drop_database(url)


@pytest.fixture(scope='session')
def pg_url():
    fixtures.require_pg()
    yield from _synced_database('postgresql')


@pytest.fixture(scope='session')
def mysql_url():
    fixtures.require_mysql()
    yield from _synced_database('mysql')


#: The session fixture holding each backend's database.
_URL_FIXTURES = {'sqlite': 'sqlite_url', 'postgresql': 'pg_url',
                 'mysql': 'mysql_url'}


@pytest.fixture(scope='session')
def sqlite_url(tmp_path_factory):
    url = f'sqlite:///{tmp_path_factory.mktemp("placement")}/placement.sqlite'
    db.sync(url)
    return url


def _emptied(request, backend: str) -> str:
    url = request.getfixturevalue(_URL_FIXTURES[backend])
    with db.get_engine(url).begin() as conn:
        helpers.empty_tables(conn)
    return url


@pytest.fixture(params=list(_URL_FIXTURES))
def db_url(request):
    """The placement database on each backend, emptied for every test."""
    return _emptied(request, request.param)


@pytest.fixture(params=['sqlite', 'postgresql'])
def direct_db_url(request):
    """``db_url`` on the backends where ``common.Direct`` differs from plain
    SQLAlchemy (psycopg) or is compared with it; MySQL
    runs every statement through SQLAlchemy."""
    return _emptied(request, request.param)


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
