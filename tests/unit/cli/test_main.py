"""nova-rt's argument handling: usage errors exit 2 before anything is sent."""

import configparser
import os

import pytest

from nova_rt.cli import commands
from nova_rt.cli import connect
from nova_rt.cmd import cli

UUID = '6f9619ff-8b86-d011-b42d-00cf4fc964ff'
# Nothing listens on port 1: a call that got as far as the broker would
# fail there, with an ERROR line, and exit 1 rather than 2.
NOWHERE = 'rabbit://guest:s3cr3t@127.0.0.1:1/'


@pytest.fixture
def no_config(monkeypatch, tmp_path):
    monkeypatch.delenv(connect.CONFIG_ENV, raising=False)
    monkeypatch.delenv(connect.TRANSPORT_URL_ENV, raising=False)
    monkeypatch.setattr(connect, 'DEFAULT_CONFIG_FILES',
                        (str(tmp_path / 'nova-rt.conf'),))
    return tmp_path / 'nova-rt.conf'


@pytest.mark.parametrize('argv,words', [
    (['candidates', '--resource', 'VCPU=x'], "amount 'x'"),
    (['candidates', '--resources', 'VCPU=1,MEMORY_MB=0'], "amount '0'"),
    (['candidates'], '--resource: give at least one RESOURCE_CLASS=N'),
    (['candidates', '--resource', 'VCPU=1', '--resources', 'VCPU=2,DISK_GB=1'],
     '--resource: VCPU is given twice'),
    (['-f', 'xml', 'host', 'list'], "invalid choice: 'xml'"),
    (['host', 'list', '-f', 'xml'], "invalid choice: 'xml'"),
    (['host', 'show'], 'HOST'),
    (['claim', 'create', '--host', 'h1', '--flavor-vcpus', '1'], '--flavor-memory-mb'),
    (['claim', 'create', '--host', 'h1', '--flavor-vcpus', '0',
      '--flavor-memory-mb', '1'], "'0' is not a whole number >= 1"),
    # A wrong column is refused before the claim is sent, not after.
    (['claim', 'create', '--host', 'h1', '--flavor-vcpus', '1',
      '--flavor-memory-mb', '1', '-c', 'nope'], "-c/--column: no column 'nope'"),
    (['claim', 'abort', '--host', 'h1', 'not-a-uuid'], 'is not a UUID'),
    (['migration', 'migrate', '--instance', UUID, '--source', 'h1',
      '--flavor-vcpus', '1', '--flavor-memory-mb', '1'], '--dest'),
    (['migration', 'resize', '--instance', UUID, '--source', 'h1',
      '--flavor-vcpus', '1', '--flavor-memory-mb', '1'], '--new-flavor-vcpus'),
    (['provider', 'trait', 'set', UUID, '--trait', 'lower'], 'not a trait name'),
    (['--timeout', '0', 'host', 'list'], 'seconds'),
    (['nosuch'], "'nosuch' is not a nova-rt command"),
])
def test_usage_errors_exit_2_with_the_reason(capsys, argv, words):
    assert cli.main(['--transport-url', NOWHERE, *argv]) == 2
    captured = capsys.readouterr()
    assert words in captured.err
    assert 'ERROR' not in captured.err          # nothing was sent
    assert captured.out == ''


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert 'usage: nova-rt' in err and '  host list\n' in err


def test_help_exits_0(capsys):
    assert cli.main(['--help']) == 0
    out = capsys.readouterr().out
    assert 'candidates' in out and 'provider trait set' in out


def test_command_help_shows_the_osc_output_options(capsys):
    assert cli.main(['host', 'list', '--help']) == 0
    out = capsys.readouterr().out
    for option in ('-f {', '-c COLUMN', '--fit-width', '--long', '--sort-column'):
        assert option in out, option
    for fmt in ('table', 'json', 'yaml', 'value', 'csv'):
        assert fmt in out.split('-f {')[1].split('}')[0]


def test_version(capsys):
    assert cli.main(['--version']) == 0
    assert capsys.readouterr().out.startswith('nova-rt ')


def test_missing_config_file_is_a_usage_error(capsys, tmp_path):
    assert cli.main(['--config-file', str(tmp_path / 'none.conf'), 'host', 'list']) == 2
    assert 'none.conf not found' in capsys.readouterr().err


def test_no_config_file_says_where_it_looked_and_what_it_uses(capsys, no_config):
    assert cli.main(['--transport-url', NOWHERE, 'host', 'list']) == 1
    notice, error = capsys.readouterr().err.splitlines()
    assert notice == (
        f'nova-rt: no config file found (looked for --config-file, '
        f'$NOVA_RT_CONFIG_FILE (unset), {no_config}); using transport_url '
        'rabbit://guest:***@127.0.0.1:1/ (--transport-url or '
        '$NOVA_RT_TRANSPORT_URL) and control_exchange openstack')
    assert error.startswith('ERROR: cannot use the message bus at '
                            'rabbit://guest:***@127.0.0.1:1/')


def test_without_any_url_it_names_the_implicit_guest_on_localhost(no_config):
    conf = connect.load_conf([], 'nova-rt')
    notice = connect.no_config_notice('nova-rt', ['/x.conf'], None, conf)
    assert ('using transport_url rabbit://guest:***@localhost:5672/ '
            "(oslo.messaging's default)") in notice
    assert 'guest:guest' not in notice


def test_a_config_file_found_is_read_without_a_notice(capsys, no_config):
    no_config.write_text(f'[DEFAULT]\ntransport_url = {NOWHERE}\n')
    assert cli.main(['host', 'list']) == 1
    err = capsys.readouterr().err
    assert err.startswith('ERROR: cannot use the message bus at rabbit://guest:***@')
    assert 'no config file' not in err and 's3cr3t' not in err


def test_config_file_from_the_environment(monkeypatch):
    monkeypatch.setenv(connect.CONFIG_ENV, '/etc/x.conf')
    assert connect.config_files(None) == (['/etc/x.conf'], ['/etc/x.conf'])
    assert connect.config_files(['/a.conf'])[0] == ['/a.conf']


def test_openstack_entry_points_list_every_command():
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(os.path.join(os.path.dirname(__file__), '..', '..', '..',
                                'setup.cfg'))
    entry_points = setup_cfg['entry_points']
    registered = dict(line.split(' = ') for line in
                      entry_points['openstack.rt.v1'].strip().splitlines())
    assert registered == {
        f"rt_{name.replace(' ', '_')}": f'nova_rt.cli.commands:{command.__name__}'
        for name, command in commands.COMMANDS.items()}
    assert entry_points['openstack.cli.extension'].strip() == (
        'rt = nova_rt.cli.osc_plugin')

