"""TLS to PostgreSQL is libpq's: ``sslmode=verify-full&sslrootcert=...`` in
``[placement_database] connection`` reaches the driver as it is, and no
password in that URL reaches a log."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from nova_rt.placement import db

URL = ('postgresql+psycopg://nova:s3cret@db.example.com/placement'
       '?sslmode=verify-full&sslrootcert=/etc/nova_rt/pg-ca.pem'
       '&sslcert=/etc/nova_rt/pg.pem&sslkey=/etc/nova_rt/pg.key')


def test_tls_parameters_reach_the_driver():
    engine = db.create_engine(URL)
    try:
        _args, kwargs = engine.dialect.create_connect_args(engine.url)
        assert kwargs['sslmode'] == 'verify-full'
        assert kwargs['sslrootcert'] == '/etc/nova_rt/pg-ca.pem'
        assert kwargs['sslcert'] == '/etc/nova_rt/pg.pem'
        assert kwargs['sslkey'] == '/etc/nova_rt/pg.key'
    finally:
        engine.dispose()


def test_safe_url_masks_every_password():
    shown = db.safe_url(URL + '&sslpassword=k3y&password=s3cret2')
    assert 's3cret' not in shown and 'k3y' not in shown
    # What is not secret stays readable, for the operator to check.
    query = make_url(shown).query
    assert query['sslmode'] == 'verify-full'
    assert query['sslrootcert'] == '/etc/nova_rt/pg-ca.pem'
