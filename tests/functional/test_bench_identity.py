"""bench/bench_identity.py keeps working: its in-process part, with tiny
counts, run as an operator would (the RPC parts need minutes, not seconds)."""

import json
import os
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(__file__), '..', '..', 'bench',
                     'bench_identity.py')
STEPS = ('stamp', 'check', 'seal', 'open_reply', 'canonical_json',
         'stdlib_c_json', 'key_id', 'ed25519_sign', 'ed25519_verify')


def _run(*args):
    return subprocess.run([sys.executable, BENCH, *args], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_in_process_figures_as_json():
    done = _run('--json', '--parts', 'in-process', '--reps', '10')
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results['machine']['nproc'] == os.cpu_count()
    assert len(results['machine']['load_after']) == 3
    cases = results['in_process']
    cold = cases.pop('instance_claim, cold caches')
    assert list(cases) == ['instance_claim'] + [
        f'report_allocations x{n}' for n in (1, 10, 100, 1000)]
    assert set(cold) == {'stamp', 'check', 'seal', 'open_reply'}
    assert all(figure['p50_us'] > 0 for figure in cold.values())
    for name, case in cases.items():
        assert set(case) == {'bytes', *STEPS}, name
        for step in STEPS:
            figure = case[step]
            assert 0 < figure['p50_us'] <= figure['p99_us'], (name, step)
            assert figure['n'] >= 10
    # What is signed grows with the consumers, and so does its encoding.
    small, big = cases['report_allocations x1'], cases['report_allocations x1000']
    assert big['bytes'] > 100 * small['bytes']
    assert big['canonical_json']['p50_us'] > small['canonical_json']['p50_us']
    assert 'claims' not in results and 'reports' not in results


def test_bad_arguments_are_named_and_nothing_runs():
    for args, option in ((('--rounds', '0'), '--rounds'),
                         (('--seconds', 'soon'), '--seconds'),
                         (('--parts', 'in-process,everything'), '--parts')):
        done = _run(*args)
        assert done.returncode == 2
        assert done.stdout == ''
        assert f'error: argument {option}: ' in done.stderr.splitlines()[-1]
