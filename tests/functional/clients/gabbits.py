"""OpenStack Placement's own gabbi files, run live with ``gabbi-run``.

The files come from the ``openstack-placement`` wheel in the reference
virtualenv (``placement/tests/functional/gabbits/``). In Placement's tree a
gabbi *fixture* class sets each file up in-process; ``gabbi-run`` loads no
fixtures (it ignores the ``fixtures:`` key), so a file passes standalone only
if all it needs is what ``APIFixture`` gives: an empty database, noauth2,
Placement's default policy and these environment variables, which
``$ENVIRON['NAME']`` reads and which are given here the same way, fresh for
each file. Each file runs against a fresh server on a fresh database.

``gabbi_passing.txt`` beside this module lists the files that pass against
nova-rt-placement-api; test_gabbi.py runs exactly those. To recompute it::

    .venv/bin/python -m tests.functional.clients.gabbits [--write]
    NOVA_RT_CLIENTS_TARGET=placement .venv/bin/python -m tests.functional.clients.gabbits

(the second run is Placement 16 itself: which files can pass standalone at all).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import os
import pathlib
import subprocess
import sys
import uuid

from tests.functional.clients import server as server_mod

PASSING = pathlib.Path(__file__).resolve().parent / 'gabbi_passing.txt'
UUID_VARS = ('RP_UUID', 'RP_NAME', 'PROJECT_ID', 'USER_ID', 'PROJECT_ID_ALT',
             'USER_ID_ALT', 'INSTANCE_UUID', 'MIGRATION_UUID', 'CONSUMER_UUID',
             'PARENT_PROVIDER_UUID', 'ALT_PARENT_PROVIDER_UUID')


def gabbits_dir() -> str:
    found = glob.glob(str(server_mod.REF_VENV / 'lib' / 'python3*' / 'site-packages'
                          / 'placement' / 'tests' / 'functional' / 'gabbits'))
    if not found:
        raise server_mod.ServerError(
            'placement/tests/functional/gabbits not found in the reference '
            'virtualenv: tools/setup-ref.sh installs openstack-placement')
    return found[0]


def all_files() -> list:
    return sorted(os.path.basename(p)
                  for p in glob.glob(os.path.join(gabbits_dir(), '*.yaml')))


def read_passing() -> list:
    with open(PASSING) as f:
        return [line.strip() for line in f
                if line.strip() and not line.startswith('#')]


def fixture_environ() -> dict:
    """What Placement's APIFixture puts in os.environ, fresh."""
    env = {name: str(uuid.uuid4()) for name in UUID_VARS}
    env['CUSTOM_RES_CLASS'] = 'CUSTOM_IRON_NFV'
    return env


def run_file(name: str, kind: str | None = None) -> tuple:
    """(passed, output) for one gabbi file against a fresh server."""
    path = os.path.join(gabbits_dir(), name)
    with server_mod.Server(kind) as srv:
        result = subprocess.run(
            [server_mod.ref_bin('gabbi-run'), srv.url, '--', path],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
            env={**os.environ, **fixture_environ()})
        output = result.stdout + result.stderr
        if result.returncode and srv.proc.poll() is not None:
            output += f'\n(server exited with {srv.proc.returncode}):\n{srv.log_tail()}'
    return result.returncode == 0, output


def run_files(names: list, kind: str | None = None, workers: int = 2) -> dict:
    """name -> (passed, output)."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {name: pool.submit(run_file, name, kind) for name in names}
        return {name: f.result() for name, f in futures.items()}


def failure_summary(output: str, lines: int = 12) -> str:
    """The FAIL/ERROR lines and what follows the first one."""
    out = output.splitlines()
    picked = [line for line in out if line.startswith(('FAIL', 'ERROR'))]
    return '\n'.join(picked[:lines]) or '\n'.join(out[-lines:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='Which Placement gabbi files pass.')
    parser.add_argument('--write', action='store_true',
                        help=f'write the passing files to {PASSING.name}')
    parser.add_argument('--verbose', action='store_true',
                        help='print why each failing file failed')
    parser.add_argument('files', nargs='*', help='only these files (default: all)')
    args = parser.parse_args(argv)
    kind = server_mod.target()
    names = args.files or all_files()
    results = run_files(names, kind)
    passing = [n for n in names if results[n][0]]
    for name in names:
        passed, output = results[name]
        print(f'{"PASS" if passed else "FAIL"} {name}')
        if not passed and args.verbose:
            print('    ' + failure_summary(output).replace('\n', '\n    '))
    print(f'{kind}: {len(passing)} of {len(names)} gabbi files pass')
    if args.write:
        if kind != 'nova-rt':
            print(f'not writing {PASSING.name}: it lists what passes against '
                  'nova-rt', file=sys.stderr)
            return 2
        with open(PASSING, 'w') as f:
            f.write('# Placement 16 gabbi files that pass against nova-rt-placement-api\n'
                    '# (python -m tests.functional.clients.gabbits --write)\n')
            f.writelines(n + '\n' for n in passing)
    return 0


if __name__ == '__main__':
    sys.exit(main())
