#!/usr/bin/env bash
# Set the machine up (tools/setup.sh), then run every check CI runs: the test
# suite, ruff, and bash -n / shellcheck on the shell scripts. Exits non-zero if
# any of them fails; runs them all so one failure does not hide another.
# Extra arguments go to pytest (e.g. tools/run-tests.sh -k claim).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools/setup.sh

# CI must not let the PostgreSQL tests skip because no database answered.
export NOVA_RT_REQUIRE_PG=1

# The one place to change how pytest is launched. The PCI functional tests
# need umockdev's preload library in the whole process (umockdev is in
# bindep.txt, so setup.sh has installed it).
PYTEST=(umockdev-wrapper .venv/bin/python -m pytest)

failed=()

echo "run-tests: pytest"
"${PYTEST[@]}" tests -q "$@" || failed+=(pytest)

echo "run-tests: quick start"; .venv/bin/python -m nova_rt.cmd.demo --ci || failed+=(quickstart)

echo "run-tests: ruff check"
.venv/bin/ruff check . || failed+=(ruff)

echo "run-tests: shell scripts"
scripts=(tools/*.sh devstack/*.sh .ci/run)
for script in "${scripts[@]}"; do
    [ -f "$script" ] || continue
    bash -n "$script" || failed+=("bash -n $script")
done
if command -v shellcheck >/dev/null; then
    existing=()
    for script in "${scripts[@]}" devstack/settings; do
        [ -f "$script" ] && existing+=("$script")
    done
    shellcheck -s bash "${existing[@]}" || failed+=(shellcheck)
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "run-tests: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "run-tests: all passed"
