"""Logging set-up for every nova_rt program: oslo.log, with secrets masked.

oslo.log formats the request context (``request_id`` and friends) of the
thread that logs.  On top of it every handler's formatter is wrapped so that a
transport URL's password, or any ``password=...`` that slips into a message or
a traceback, is masked in what is written, whatever module logged it.

Masking runs on every line written, so it must stay linear in the length of
the line: a regular expression such as ``[a-zA-Z][\\w+.-]*://`` retried at
every position of a long run of word characters is quadratic (a 120,000
character ``user_id`` kept a daemon busy for 47 s).  URL secrets are found
from the ``://`` outwards instead, each character looked at a bounded number
of times; ``oslo_utils.strutils.mask_password`` measured linear (0.05 s per
MB of ordinary text, 0.5 s per MB of text made of its keywords).
"""

import logging
import re

from oslo_log import log as oslo_logging
from oslo_utils import strutils

#: A URL's userinfo: from ``://`` to its last ``@``.  A URL ends at
#: whitespace or where the next one starts, and its userinfo runs to the last
#: ``@`` of it, as ``urllib.parse`` reads a netloc: everything from the first
#: ``:`` to there is masked, since a password may hold ``,`` ``@`` ``:`` or
#: ``/`` and no part of that span can be told safe (a multi-host
#: ``rabbit://u1:p1@h1,u2:p2@h2/`` shows as ``rabbit://u1:***@h2/``).
#: Linear: every attempt starts at a ``://`` and stops before the next one,
#: so each character is read a bounded number of times.
_URL_USERINFO = re.compile(r'://(?P<user>[^\s:/]*):(?:(?!://)\S)*@')
SECRET = '***'


def _mask_urls(text: str) -> str:
    """Mask the password of every ``scheme://user:password@host`` in ``text``."""
    if '://' not in text:
        return text
    return _URL_USERINFO.sub(_masked_userinfo, text)


def _masked_userinfo(match: re.Match) -> str:
    # (A function: cheaper than a template with a group, measured.)
    return '://' + match.group('user') + ':' + SECRET + '@'


def mask_secrets(text: str) -> str:
    """Mask URL passwords (``rabbit://u:SECRET@h``) and ``password=...`` pairs."""
    if not text:
        return text
    return strutils.mask_password(_mask_urls(text), secret=SECRET)


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
