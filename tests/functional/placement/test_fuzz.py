"""Fuzzed calls from an oslo.messaging client against a real
nova-rt-placement: only the contract's answers, nothing changed by a
refusal, the service alive.  ``tools/fuzz_rpc.py`` sends thousands more."""

from tests.functional import rpc_fuzz
from tests.functional import rpc_fuzz_targets

#: Payloads per method in the default suite (11 methods).
PER_METHOD = 12


def test_fuzzed_calls_get_contract_answers_and_change_nothing(placement_rpc):
    rpc_fuzz.fuzz_and_check(rpc_fuzz_targets.placement_target(placement_rpc),
                            PER_METHOD, placement_rpc.log_text)
