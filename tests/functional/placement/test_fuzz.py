"""Fuzzed calls from an oslo.messaging client against a real
nova-rt-placement: only the contract's answers, nothing changed by a
refusal, the service alive.  ``tools/fuzz_rpc.py`` sends thousands more."""

from tests.functional import rpc_fuzz
from tests.functional import rpc_fuzz_targets

#: Payloads per method in the default suite (11 methods).
PER_METHOD = 12


def test_fuzzed_calls_get_contract_answers_and_change_nothing(placement_rpc):
    target, transport = rpc_fuzz_targets.placement_target(placement_rpc)
    try:
        report = rpc_fuzz.fuzz(target, PER_METHOD, derandomize=True)
    finally:
        transport.cleanup()
    assert report.findings == [], '\n'.join(report.lines())
    assert report.sent() >= 11 * PER_METHOD
    assert target.alive()
    log = placement_rpc.log_text()
    assert 'Traceback' not in log
