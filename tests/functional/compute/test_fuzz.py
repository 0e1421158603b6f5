"""Fuzzed calls from an oslo.messaging client against a real nova-rt-compute
(each backend): only the contract's answers, nothing changed by a refusal,
the daemon alive.  ``tools/fuzz_rpc.py`` sends thousands more."""

from tests.functional import rpc_fuzz
from tests.functional import rpc_fuzz_targets

#: Payloads per method and backend in the default suite (15 methods).
PER_METHOD = 8


def test_fuzzed_calls_get_contract_answers_and_change_nothing(compute_stack):
    rpc_fuzz.fuzz_and_check(rpc_fuzz_targets.compute_target(compute_stack),
                            PER_METHOD, compute_stack.compute.log_text)
