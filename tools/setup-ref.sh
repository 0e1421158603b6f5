#!/usr/bin/env bash
# Make the reference virtualenv .venv-ref: OpenStack's own Placement 16 and
# the clients that talk to it (Nova 34's report client, osc-placement,
# python-openstackclient, gabbi). It is where tests/functional/clients runs
# the real clients against nova-rt-placement-api, and where bench/bench_rest.py
# runs Placement 16 beside it. None of it is a dependency of nova_rt, so it
# lives apart from .venv. tools/run-tests.sh calls this; it is safe to run
# again: with its requirements unchanged it does nothing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv-ref
REQS=tools/ref-requirements.txt
STAMP=$VENV/.nova_rt-ref-requirements.sha256

say() { echo "setup-ref: $*"; }
die() { echo "setup-ref: ERROR: $*" >&2; exit 1; }

want=$(sha256sum "$REQS" | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    say "$VENV: requirements unchanged"
    exit 0
fi

log=$(mktemp "${TMPDIR:-/tmp}/nova_rt-setup-ref.XXXXXX")
trap 'rm -f "$log"' EXIT
start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
    say "$VENV: creating with $(${PYTHON:-python3} --version 2>&1)"
    "${PYTHON:-python3}" -m venv "$VENV" || die "python3 -m venv failed"
fi
say "$VENV: installing $REQS (a few minutes the first time)"
if ! { "$VENV/bin/python" -m pip install --upgrade pip \
        && "$VENV/bin/python" -m pip install -r "$REQS"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "pip install -r $REQS failed"
fi
echo "$want" > "$STAMP"
say "$VENV: ready in $(( $(date +%s) - start ))s"
