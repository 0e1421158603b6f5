#!/usr/bin/env bash
# Set the machine up (tools/setup.sh), then run every check CI runs: the test
# suite, ruff, and bash -n / shellcheck on the shell scripts. Exits non-zero if
# any of them fails; runs them all so one failure does not hide another.
# Extra arguments go to pytest (e.g. tools/run-tests.sh -k claim).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools/setup.sh

# CI must not let the PostgreSQL or MySQL tests skip because no database answered.
export NOVA_RT_REQUIRE_PG=1 NOVA_RT_REQUIRE_MYSQL=1

failed=()

# The real-client tests (tests/functional/clients: osc-placement, Nova 34's
# report client, Placement's gabbi files) run in the reference virtualenv
# .venv-ref; without it they fail here rather than skip.
tools/setup-ref.sh || failed+=(setup-ref)
export NOVA_RT_REQUIRE_REF=1

# The real-libvirtd tests (marked libvirtd) run in the pytest run below
# wherever this machine can have a libvirtd: started here as
# tools/setup-libvirtd.sh does when it is not running. NOVA_RT_LIBVIRTD=1 then
# makes a libvirtd that stops answering a failure, not a skip; where the
# machine cannot have one (not root, no package archive) the tests say so in
# one line and are skipped. NOVA_RT_LIBVIRTD=0 leaves libvirtd alone.
setup_libvirtd() {
    local log rc=0
    if virsh -c qemu:///system version >/dev/null 2>&1; then
        echo "run-tests: real libvirtd: answering on qemu:///system"
        export NOVA_RT_LIBVIRTD=1
        return
    fi
    log=$(mktemp "${TMPDIR:-/tmp}/nova_rt-setup-libvirtd.XXXXXX")
    tools/setup-libvirtd.sh >"$log" 2>&1 || rc=$?
    case $rc in
        0)
            grep '^setup-libvirtd:' "$log" || true
            export NOVA_RT_LIBVIRTD=1 ;;
        2)
            echo "run-tests: real libvirtd: not on this machine" \
                "($(tail -n 1 "$log")): its tests are skipped" ;;
        *)
            tail -n 30 "$log" >&2
            failed+=(setup-libvirtd) ;;
    esac
    rm -f "$log"
}
if [ "${NOVA_RT_LIBVIRTD:-}" != 0 ]; then
    setup_libvirtd
fi

# The one place to change how pytest is launched. The PCI functional tests
# need umockdev's preload library in the whole process (umockdev is in
# bindep.txt, so setup.sh has installed it).
PYTEST=(umockdev-wrapper .venv/bin/python -m pytest)

echo "run-tests: pytest"
# The slowest tests are listed at the end: the suite must stay well under
# 15 minutes, and this says where its time goes.
"${PYTEST[@]}" tests -q --durations=15 "$@" || failed+=(pytest)

echo "run-tests: quick start"; .venv/bin/python -m tools.demo --ci || failed+=(quickstart)

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
