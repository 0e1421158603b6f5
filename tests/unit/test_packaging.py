"""What the wheel carries: the data files of etc/, and requirements that are
exactly the distributions nova_rt imports."""

import ast
import configparser
import importlib.metadata
import pathlib
import re
import sys
import warnings

from pbr import setupcfg

REPO = pathlib.Path(__file__).resolve().parents[2]
#: Required but never imported: SQLAlchemy loads the driver a URL names.
LOADED_BY_NAME = {'pymysql'}


def _data_files() -> dict:
    parser = configparser.ConfigParser()
    parser.read(REPO / 'setup.cfg')
    config = {section: dict(parser.items(section)) for section in parser.sections()}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')     # pbr 7 deprecates [files] data_files
        kwargs = setupcfg.setup_cfg_to_setup_kwargs(config)
    return {target: sources for target, sources in kwargs['data_files']}


def test_wheel_installs_sample_config_generator_file_and_units():
    data_files = _data_files()
    assert sorted(data_files['etc/nova_rt']) == sorted(
        str(p.relative_to(REPO)) for p in (REPO / 'etc' / 'nova_rt').iterdir())
    assert sorted(data_files['share/nova_rt/systemd']) == sorted(
        str(p.relative_to(REPO)) for p in (REPO / 'etc' / 'systemd').glob('*.service'))
    assert 'etc/nova_rt/nova-rt.conf.sample' in data_files['etc/nova_rt']


def _normalized(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def _imported_distributions() -> set:
    modules = set()
    for path in (REPO / 'nova_rt').rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split('.')[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split('.')[0])
    modules -= set(sys.stdlib_module_names) | {'nova_rt', '__future__'}
    providers = importlib.metadata.packages_distributions()
    missing = sorted(m for m in modules if m not in providers)
    assert not missing, f'imported but installed by no distribution: {missing}'
    return {_normalized(d) for m in modules for d in providers[m]}


def _required() -> set:
    names = set()
    for line in (REPO / 'requirements.txt').read_text().splitlines():
        line = line.split('#')[0].strip()
        if line:
            names.add(_normalized(re.match(r'[A-Za-z0-9_.-]+', line).group(0)))
    return names


def test_requirements_are_what_the_package_imports():
    imported, required = _imported_distributions(), _required()
    assert sorted(imported - required) == [], 'imported, not in requirements.txt'
    assert sorted(required - imported - LOADED_BY_NAME) == [], \
        'in requirements.txt, never imported'
