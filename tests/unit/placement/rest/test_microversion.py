"""Microversion negotiation as Placement (microversion_parse) does it."""

import pytest

from nova_rt.placement.rest import microversion as mv


@pytest.mark.parametrize('header, expected', [
    (None, (1, 0)),
    ('', (1, 0)),
    ('placement 1.28', (1, 28)),
    ('placement latest', mv.MAX_VERSION),
    ('PLACEMENT 1.2', (1, 2)),
    ('compute 2.1, placement 1.10', (1, 10)),
    ('placement 1.2, placement 1.14', (1, 14)),   # the last one wins
    ('compute 2.90', (1, 0)),                      # not ours: the minimum
    ('placement  1.05 ', (1, 5)),
])
def test_negotiated(header, expected):
    assert mv.negotiate(header) == expected


@pytest.mark.parametrize('header', [
    'placement 1', 'placement one.two', 'placement 1.x', 'placement .5',
    'placement 1.2.3'])
def test_malformed_is_400(header):
    with pytest.raises(mv.Malformed):
        mv.negotiate(header)


@pytest.mark.parametrize('header', [
    'placement 0.9', 'placement 2.0', 'placement 1.40', 'placement 1.9999',
    'placement -1.5'])
def test_out_of_range_is_406(header):
    with pytest.raises(mv.Unacceptable):
        mv.negotiate(header)


def test_version_compares_with_tuples_and_prints():
    version = mv.Version(1, 28)
    assert version >= (1, 28) and version > (1, 9) and version < (1, 30)
    assert str(version) == '1.28' and version.minor == 28
    assert mv.response_header(version) == 'placement 1.28'
    assert version.matches((1, 20), (1, 28))
    assert not version.matches((1, 29))
