#!/usr/bin/env bash
# Set the machine up (tools/setup.sh), then run the demo: nova-rt-placement and
# two nova-rt-compute daemons on libvirt's test driver (one with an SR-IOV NIC
# under umockdev), driven through the nova-rt CLI. Arguments go to the demo:
#   tools/quickstart.sh                  run, then stop everything (waits for
#                                        Enter first when run from a terminal)
#   tools/quickstart.sh --ci             run and stop without waiting
#   tools/quickstart.sh --keep-running   leave the services up; it prints how
#                                        to use and stop them:
#   tools/quickstart.sh stop DIR
#   tools/quickstart.sh --help
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools/setup.sh
exec .venv/bin/python -m tools.demo "$@"
