"""Logging set-up for every nova_rt program: oslo.log, with secrets masked.

oslo.log formats the request context (``request_id`` and friends) of the
thread that logs.  On top of it every handler's formatter is wrapped so that a
transport URL's password, or any ``password=...`` that slips into a message or
a traceback, is masked in what is written, whatever module logged it.
"""

import logging
import re

from oslo_log import log as oslo_logging
from oslo_utils import strutils

_URL_SECRET = re.compile(r'(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@\s]+)@')


def mask_secrets(text: str) -> str:
    """Mask URL passwords (``rabbit://u:SECRET@h``) and ``password=...`` pairs."""
    if not text:
        return text
    text = _URL_SECRET.sub(r'\g<scheme>\g<user>:***@', text)
    return strutils.mask_password(text)


class MaskingFormatter(logging.Formatter):
    """Wraps another formatter and masks secrets in its whole output."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record):
        return mask_secrets(self.inner.format(record))

    def formatTime(self, record, datefmt=None):  # noqa: N802 (logging's name)
        return self.inner.formatTime(record, datefmt)


def mask_handlers(logger: logging.Logger = None) -> None:
    """Wrap the formatter of every handler of ``logger`` (root by default)."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        formatter = handler.formatter or logging.Formatter()
        if not isinstance(formatter, MaskingFormatter):
            handler.setFormatter(MaskingFormatter(formatter))


def register_options(conf) -> None:
    """oslo.log's options, once: registering CLI options again after the
    command line was parsed is an error, and a process (or a test run) may
    set up logging more than once."""
    if 'debug' in conf and 'log_file' in conf:
        return
    oslo_logging.register_options(conf)


def setup(conf, product: str = 'nova_rt') -> None:
    """Configure oslo.log from ``conf`` (stderr unless ``log_file``) and mask secrets."""
    oslo_logging.setup(conf, product)
    mask_handlers()
