"""nova-rt's argument handling: usage errors exit 2 before anything is sent."""

import pytest

from nova_rt.cmd import cli


@pytest.mark.parametrize('argv,words', [
    (['candidates', '--resources', 'VCPU=x'], "amount 'x'"),
    (['candidates'], '--resources'),
    (['-f', 'xml', 'host', 'list'], "invalid choice: 'xml'"),
    (['host', 'show'], 'HOST'),
    (['claim', 'create', '--host', 'h1', '--flavor-vcpus', '1'], '--flavor-memory-mb'),
    (['claim', 'create', '--host', 'h1', '--flavor-vcpus', '0',
      '--flavor-memory-mb', '1'], "'0' is not a whole number >= 1"),
    (['claim', 'abort', '--host', 'h1', 'not-a-uuid'], 'is not a UUID'),
    (['migration', 'migrate', '--instance', '6f9619ff-8b86-d011-b42d-00cf4fc964ff',
      '--source', 'h1', '--flavor-vcpus', '1', '--flavor-memory-mb', '1'], '--dest'),
    (['migration', 'resize', '--instance', '6f9619ff-8b86-d011-b42d-00cf4fc964ff',
      '--source', 'h1', '--flavor-vcpus', '1', '--flavor-memory-mb', '1'],
     '--new-flavor-vcpus'),
    (['--timeout', '0', 'host', 'list'], 'seconds'),
    (['nosuch'], "invalid choice: 'nosuch'"),
])
def test_usage_errors_exit_2_with_the_reason(capsys, argv, words):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert words in captured.err
    assert captured.out == ''


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert 'host' in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert cli.main(['--help']) == 0
    assert 'candidates' in capsys.readouterr().out


def test_missing_config_file_is_a_usage_error(capsys, tmp_path):
    assert cli.main(['--config-file', str(tmp_path / 'none.conf'), 'host', 'list']) == 2
    assert 'none.conf not found' in capsys.readouterr().err


def test_format_is_accepted_after_the_command_too():
    args = cli.build_parser().parse_args(['host', 'list', '-f', 'yaml'])
    assert args.format == 'yaml'
    args = cli.build_parser().parse_args(['-f', 'json', 'host', 'list'])
    assert args.format == 'json'


def test_config_file_from_the_environment(monkeypatch):
    monkeypatch.setenv('NOVA_RT_CONFIG_FILE', '/etc/x.conf')
    assert cli.config_files(None) == ['/etc/x.conf']
    assert cli.config_files(['/a.conf']) == ['/a.conf']

