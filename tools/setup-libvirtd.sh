#!/bin/bash
# Bring up a real libvirtd with QEMU for the tests marked libvirtd
# (tools/run-tests.sh runs this when libvirtd is not running and it may).
#
# For CI and developer machines without systemd: the daemons are started in
# the background (-d) rather than as units. Idempotent: every step checks
# first, so running it twice changes nothing. Needs root.
#
# Exit status: 0 libvirtd answers on qemu:///system; 2 this machine cannot
# have it (not root, or the package archive unreachable), which callers may
# take as "skip the real-libvirtd tests"; anything else is a failure.
set -euo pipefail

QEMU_CONF=/etc/libvirt/qemu.conf
SOCKET=/var/run/libvirt/libvirt-sock

log() { echo "setup-libvirtd: $*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-libvirtd: must run as root" >&2
    exit 2
fi

missing=()
for pkg in libvirt-daemon-system qemu-system-x86; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    # No init system to start services in: keep the package scripts from trying.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        # Removed however apt ends: left behind, it would stop every later
        # package on this machine from starting its service.
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    # A machine's package lists may be older than the archive (a fresh image,
    # a point release since): install would then ask for files that are gone.
    # --error-on=any: plain apt-get update exits 0 when it fetched nothing.
    if ! DEBIAN_FRONTEND=noninteractive apt-get update --error-on=any; then
        echo "setup-libvirtd: apt-get update failed: package archive unreachable" >&2
        exit 2
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/run/libvirt

if ! getent group libvirt-qemu >/dev/null; then
    groupadd --system libvirt-qemu
fi
if ! id libvirt-qemu >/dev/null 2>&1; then
    useradd --system --gid libvirt-qemu --home-dir /var/lib/libvirt \
        --no-create-home --shell /usr/sbin/nologin libvirt-qemu
    log "created user libvirt-qemu"
fi

# QEMU as root: containers and CI runners rarely allow the uid switch and
# the per-image chown that running as libvirt-qemu needs.
touch "$QEMU_CONF"
if ! grep -qE '^user = "root"' "$QEMU_CONF"; then
    sed -i -E '/^#?[[:space:]]*user[[:space:]]*=/d' "$QEMU_CONF"
    echo 'user = "root"' >> "$QEMU_CONF"
    log "set user = \"root\" in $QEMU_CONF"
fi
if ! grep -qE '^group = "root"' "$QEMU_CONF"; then
    sed -i -E '/^#?[[:space:]]*group[[:space:]]*=/d' "$QEMU_CONF"
    echo 'group = "root"' >> "$QEMU_CONF"
fi

# Never with a preload of the caller's (umockdev's, when run from a test
# under umockdev-wrapper): libvirtd forks for its security labels, and the
# preload deadlocks in the child, which hangs every later domain start.
if ! pgrep -x virtlogd >/dev/null; then
    env -u LD_PRELOAD virtlogd -d
    log "started virtlogd"
fi
if ! pgrep -x libvirtd >/dev/null; then
    env -u LD_PRELOAD libvirtd -d
    log "started libvirtd"
fi

for _ in $(seq 1 30); do
    if [ -S "$SOCKET" ] && virsh -c qemu:///system version >/dev/null 2>&1; then
        log "libvirtd answers on qemu:///system"
        exit 0
    fi
    sleep 1
done
echo "setup-libvirtd: libvirtd did not answer on qemu:///system within 30s" >&2
exit 1
