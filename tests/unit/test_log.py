"""Secrets never reach the log file, whoever logs them and however."""

import logging

import pytest
from oslo_config import cfg

from nova_rt import log as nova_log

URL = 'rabbit://guest:s3cret@127.0.0.1:5672/'


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / 'nova-rt.log'
    conf = cfg.ConfigOpts()
    nova_log.register_options(conf)
    conf([], project='nova_rt', default_config_files=[], default_config_dirs=[])
    conf.set_override('log_file', str(path))
    conf.set_override('debug', True)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    nova_log.setup(conf, 'nova_rt')
    yield path
    # oslo.log configures the root logger; give the next test a clean one.
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in saved_handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(saved_level)


def _written(path):
    for handler in logging.getLogger().handlers:
        handler.flush()
    return path.read_text()


def test_secrets_in_messages_and_tracebacks_are_masked(log_file):
    logger = logging.getLogger('nova_rt.some.module')
    logger.info('connecting to %s', URL)
    logger.warning('retrying with password=hunter2 on %s', URL)
    try:
        raise ConnectionError(f'cannot reach {URL}')
    except ConnectionError:
        logger.exception('transport failed')
    text = _written(log_file)

    assert 's3cret' not in text
    assert 'hunter2' not in text
    assert 'rabbit://guest:***@127.0.0.1:5672/' in text
    assert 'password=***' in text
    # The masking kept the rest: the traceback itself is there.
    assert 'Traceback' in text and 'ConnectionError: cannot reach' in text
    # The info line, the warning and the exception's own text.
    assert text.count('rabbit://guest:***@') >= 3


def test_a_library_logger_is_masked_too(log_file):
    logging.getLogger('oslo.messaging._drivers.impl_rabbit').error(
        'Connection failed: %s', 'amqp://admin:Pa55w0rd@mq.example:5671/vhost')
    text = _written(log_file)
    assert 'Pa55w0rd' not in text
    assert 'amqp://admin:***@mq.example:5671/vhost' in text
