"""doc/source/security.rst's test vector is what the code signs: a third
party implementing the scheme from the page gets the same bytes."""

import json
import os
import re

from cryptography.hazmat.primitives.asymmetric import ed25519

from nova_rt.identity import keys
from nova_rt.identity import scheme

DOC = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'doc',
                   'source', 'security.rst')


def _vector() -> str:
    with open(DOC) as f:
        text = f.read()
    return text[text.index('Test vector'):text.index('What remains trusted')]


def _blocks(text: str) -> list:
    """The literal blocks (after ``::``), dedented."""
    blocks = []
    for match in re.finditer(r'::\n\n((?:    .*\n|\n)+)', text):
        lines = [line[4:] for line in match.group(1).rstrip().split('\n')]
        blocks.append('\n'.join(lines))
    return blocks


def test_the_security_page_test_vector_is_what_the_code_signs():
    public_line, arguments, signed, sig = _blocks(_vector())
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    assert keys.public_line(key.public_key()) == public_line
    signing = scheme.SigningKey('conductor-1', key)
    args = json.loads(arguments)
    stamp = scheme.stamp_request(
        signing, topic='nova-rt-compute', server='host-a',
        method='instance_claim', args=args, ts=1765100000123,
        nonce='00112233445566778899aabbccddeeff')
    assert scheme.request_bytes(
        topic='nova-rt-compute', server='host-a', method='instance_claim',
        args=args, principal='conductor-1', key_id=stamp['key_id'],
        ts=1765100000123, nonce='00112233445566778899aabbccddeeff'
    ) == signed.encode('utf-8')
    assert stamp['sig'] == sig
    assert stamp['key_id'] == public_line.split()[2]
