"""Fuzzed calls from an oslo.messaging client against a real nova-rt-compute
(each backend): only the contract's answers, nothing changed by a refusal,
the daemon alive.  ``tools/fuzz_rpc.py`` sends thousands more."""

from tests.functional import rpc_fuzz
from tests.functional import rpc_fuzz_targets

#: Payloads per method and backend in the default suite (15 methods).
PER_METHOD = 8


def test_fuzzed_calls_get_contract_answers_and_change_nothing(compute_stack):
    target, transport = rpc_fuzz_targets.compute_target(compute_stack)
    try:
        report = rpc_fuzz.fuzz(target, PER_METHOD, derandomize=True)
    finally:
        transport.cleanup()
    assert report.findings == [], '\n'.join(report.lines())
    assert report.sent() >= 15 * PER_METHOD
    assert target.alive()
    log = compute_stack.compute.log_text()
    assert 'Traceback' not in log
    assert 'failed unexpectedly' not in log
