"""One table per API: what is derived from it (``nova_rt.rpctable``)."""

import pytest

from nova_rt import exception
from nova_rt import rpctable

A, M = rpctable.Argument, rpctable.Method
STRING = {'type': 'string', 'maxLength': 10}
LIST = {'type': 'array', 'maxItems': 3, 'items': STRING}

TABLE = rpctable.Table('svc', [
    M('put', [A('name', STRING), A('tags', LIST, []), A('note', STRING, None)]),
    M('ping', read_only=True),
])


def _reason(name, arguments) -> str:
    with pytest.raises(exception.InvalidInput) as info:
        TABLE.validate(name, arguments)
    return str(info.value)


def test_defaults_are_filled_in_and_copied():
    first = TABLE.validate('put', {'name': 'a'})
    assert first == {'name': 'a', 'tags': [], 'note': None}
    first['tags'].append('x')
    assert TABLE.validate('put', {'name': 'a'})['tags'] == []


@pytest.mark.parametrize('arguments, reason', [
    ({}, 'name: is required'),
    ({'name': 'a', 'force': True}, 'force: is not an argument of put'),
    ({'name': 'a', 'x': 1, 'y': 2}, 'x: is not an argument of put (and 1 more)'),
    ({'name': 5}, "name: 5 is not of type 'string'"),
    ({'name': 'a', 'tags': ['b'] * 4}, 'tags: ['),
    ({'name': 'a', 'tags': ['b', 3]}, "tags[1]: 3 is not of type 'string'"),
])
def test_every_bad_argument_is_named(arguments, reason):
    assert reason in _reason('put', arguments)


def test_unknown_methods_are_refused():
    assert 'is not a method of svc' in _reason('drop', {})


@TABLE.endpoint
class Endpoint:
    def __init__(self):
        self.served = []

    def _serve(self, name, context, arguments):
        self.served.append((name, context, arguments))
        return name


def test_the_endpoint_has_one_exposed_method_per_row():
    endpoint = Endpoint()
    assert endpoint.put({'ctx': 1}, name='a') == 'put'
    assert endpoint.served == [('put', {'ctx': 1}, {'name': 'a'})]
    assert Endpoint.put.exposed and Endpoint.ping.exposed
    assert not hasattr(Endpoint._serve, 'exposed')


@pytest.mark.parametrize('name', ['context', 'self'])
def test_an_argument_named_like_the_parameters_reaches_validation(name):
    # oslo.messaging calls method(ctxt, **args): with ordinary parameters a
    # "context" argument is a TypeError ("multiple values") of Python's.
    endpoint = Endpoint()
    endpoint.put({}, **{name: 1})
    assert endpoint.served[0][2] == {name: 1}


def test_a_derived_method_cannot_be_defined_too():
    with pytest.raises(TypeError):
        @TABLE.endpoint
        class Twice:
            def put(self, context, name):
                pass


def test_signatures_as_the_docs_write_them():
    assert TABLE.signature('put') == "put(name, tags=[], note=None)"
    assert TABLE.signature('ping') == 'ping()'


class Client:
    def put(self, context, name, tags=(), note=None):
        pass

    def ping(self, context, timeout=None):
        pass


def test_a_client_that_agrees_with_the_table_passes():
    TABLE.check_client(Client, client_only={'ping': ('timeout',)})


@pytest.mark.parametrize('change', [
    {'put': lambda self, context, name, note=None: None},          # missing
    {'put': lambda self, context, name, note=None, tags=(): None},  # order
    {'put': lambda self, context, name=None, tags=(), note=None: None},
    {'put': lambda self, context, name, tags, note=None: None},
    {'extra': lambda self, context: None},
])
def test_a_client_that_drifts_from_the_table_fails(change):
    drifted = type('Drifted', (Client,), change)
    with pytest.raises(TypeError):
        TABLE.check_client(drifted, client_only={'ping': ('timeout',)})


# -- versions ---------------------------------------------------------------

VERSIONED = rpctable.Table('svc', [
    M('put', [A('name', STRING), A('note', STRING, None, since='1.1'),
              A('tags', LIST, [], since='1.2')]),
    M('ping', read_only=True),
])


def test_the_version_is_the_newest_argument_s():
    assert TABLE.version == '1.0'
    assert VERSIONED.version == '1.2'
    assert VERSIONED.versions == ['1.0', '1.1', '1.2']


def test_versions_compare_as_numbers():
    table = rpctable.Table('svc', [M('put', [
        A('a', STRING, None, since='1.9'), A('b', STRING, None, since='1.10')])])
    assert table.version == '1.10'
    assert table.downgrade('put', {'a': 'x', 'b': 'y'}, '1.9') == (
        '1.9', {'a': 'x'})


def test_an_argument_added_later_must_be_optional():
    with pytest.raises(ValueError, match='note, added in 1.1, must have a default'):
        rpctable.Table('svc', [M('put', [A('note', STRING, since='1.1')])])


@pytest.mark.parametrize('arguments, cap, sent', [
    # The lowest version the arguments need, whatever the cap.
    ({'name': 'a'}, None, ('1.0', {'name': 'a'})),
    ({'name': 'a', 'note': 'n'}, None, ('1.1', {'name': 'a', 'note': 'n'})),
    ({'name': 'a', 'note': 'n', 'tags': []}, None,
     ('1.2', {'name': 'a', 'note': 'n', 'tags': []})),
    # A cap leaves out what the peer would refuse.
    ({'name': 'a', 'note': 'n', 'tags': []}, '1.1',
     ('1.1', {'name': 'a', 'note': 'n'})),
    ({'name': 'a', 'note': 'n', 'tags': []}, '1.0', ('1.0', {'name': 'a'})),
])
def test_downgrade_sends_what_the_capped_peer_accepts(arguments, cap, sent):
    assert VERSIONED.downgrade('put', arguments, cap) == sent


def test_as_of_is_the_older_release_s_table():
    old = VERSIONED.as_of('1.0')
    assert old.version == '1.0'
    # What the older release refuses, and the downgrade makes it accept.
    with pytest.raises(exception.InvalidInput, match='note: is not an argument'):
        old.validate('put', {'name': 'a', 'note': 'n'})
    _, sent = VERSIONED.downgrade('put', {'name': 'a', 'note': 'n'}, '1.0')
    assert old.validate('put', sent) == {'name': 'a'}
    # The newer release takes both forms.
    assert VERSIONED.validate('put', {'name': 'a'})['note'] is None
