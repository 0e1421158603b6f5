#!/usr/bin/env bash
# Set the machine up (tools/setup.sh), then run the demo. Arguments go to the
# demo: tools/quickstart.sh --help.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools/setup.sh
exec .venv/bin/python -m nova_rt.cmd.demo "$@"
