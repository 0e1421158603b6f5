#!/usr/bin/env bash
# Make this machine (Debian 12, run as root) ready to run and test nova_rt:
# Debian packages from bindep.txt, the virtualenv .venv with the project
# installed, RabbitMQ on 127.0.0.1:5672, PostgreSQL on 127.0.0.1:5432 and
# MariaDB on 127.0.0.1:3306.
#
# Safe to run any number of times: every step checks first and does nothing
# when its work is already done. There is no systemd here (containers), so
# the daemons are started with their own start commands.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv
STAMP=$VENV/.nova_rt-requirements.sha256
WAIT_SECONDS=${NOVA_RT_SETUP_WAIT:-90}

say() { echo "setup: $*"; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

# Runs a noisy command with its output in a log; shows the end of it on failure.
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/nova_rt-setup.XXXXXX")
trap 'rm -rf "$LOG_DIR"' EXIT
quietly() {
    local log=$1
    shift
    if ! "$@" >>"$log" 2>&1; then
        tail -n 30 "$log" >&2
        return 1
    fi
}

# --- Debian packages --------------------------------------------------------

# Prints the packages of bindep.txt to install here: every line except those
# only for other platforms or only for the [libvirtd] profile, which
# tools/setup-libvirtd.sh installs (run-tests.sh runs it; quickstart.sh and
# a production host need no QEMU).
bindep_packages() {
    local line name profiles p platforms others
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%%#*}
        read -r name profiles <<<"$line" || true
        [ -n "${name:-}" ] || continue
        platforms=""
        others=""
        for p in ${profiles//[\[\]]/}; do
            case "$p" in
                platform:*) platforms+=" $p" ;;
                *) others+=" $p" ;;
            esac
        done
        if [ -n "$platforms" ]; then
            case "$platforms " in
                *" platform:dpkg "*|*" platform:debian "*) ;;
                *) continue ;;
            esac
        fi
        [ "$others" = " libvirtd" ] && continue
        echo "$name"
    done < bindep.txt
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
    local missing=() pkg
    [ -f bindep.txt ] || die "bindep.txt not found in $(pwd)"
    for pkg in $(bindep_packages); do
        installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "Debian packages: all present"
        return
    fi
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages (${missing[*]}): run as root"
    say "Debian packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    quietly "$LOG_DIR/apt.log" apt-get update || die "apt-get update failed"
    quietly "$LOG_DIR/apt.log" apt-get install -y --no-install-recommends "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
}

# --- the virtualenv -----------------------------------------------------------

requirements_hash() {
    cat requirements.txt test-requirements.txt setup.cfg | sha256sum | cut -d' ' -f1
}

setup_venv() {
    local python=${PYTHON:-python3} want
    if [ ! -x "$VENV/bin/python" ]; then
        say "virtualenv: creating $VENV with $($python --version 2>&1)"
        "$python" -m venv "$VENV" || die "python3 -m venv failed (is python3-venv installed?)"
    fi
    want=$(requirements_hash)
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        say "virtualenv: requirements unchanged"
        wsgi_scripts
        return
    fi
    say "virtualenv: installing requirements (a few minutes the first time)"
    quietly "$LOG_DIR/pip.log" "$VENV/bin/python" -m pip install --upgrade pip \
        || die "pip upgrade failed"
    quietly "$LOG_DIR/pip.log" "$VENV/bin/python" -m pip install \
        -r requirements.txt -r test-requirements.txt -e . \
        || die "pip install failed"
    wsgi_scripts
    echo "$want" > "$STAMP"
}

# An editable install writes no pbr WSGI script (nova-rt-placement-api):
# write them with pbr's own generator (tools/wsgi_scripts.py).
wsgi_scripts() {
    quietly "$LOG_DIR/pip.log" "$VENV/bin/python" tools/wsgi_scripts.py \
        || die "writing the WSGI scripts failed"
}

# --- the daemons ----------------------------------------------------------------

answers() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

wait_for_port() {
    local port=$1 what=$2 waited=0
    until answers "$port"; do
        [ "$waited" -lt "$WAIT_SECONDS" ] \
            || die "$what does not answer on 127.0.0.1:$port after ${WAIT_SECONDS}s"
        sleep 1
        waited=$((waited + 1))
    done
}

start_rabbitmq() {
    if answers 5672; then
        say "RabbitMQ: already answering on 127.0.0.1:5672"
        return
    fi
    say "RabbitMQ: starting"
    rabbitmq-server -detached || die "rabbitmq-server -detached failed"
    wait_for_port 5672 RabbitMQ
    say "RabbitMQ: up"
}

latest_subdir() {
    find "$1" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1
}

pg_version() {
    local version
    version=$(latest_subdir /etc/postgresql)
    [ -n "$version" ] || version=$(latest_subdir /usr/lib/postgresql)
    [ -n "$version" ] || die "PostgreSQL is not installed (/usr/lib/postgresql is empty)"
    echo "$version"
}

pg_psql() {
    psql -h 127.0.0.1 -U postgres -w -X -q -t "$@"
}

ensure_pg_trust() {
    local version=$1 hba
    pg_psql -d postgres -c 'SELECT 1' >/dev/null 2>&1 && return
    hba=/etc/postgresql/$version/main/pg_hba.conf
    [ -f "$hba" ] || die "cannot connect to PostgreSQL on 127.0.0.1 as postgres, and no $hba"
    say "PostgreSQL: allowing user postgres from 127.0.0.1 without password ($hba)"
    sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload \
        || die "pg_ctlcluster reload failed"
    pg_psql -d postgres -c 'SELECT 1' >/dev/null \
        || die "cannot connect to PostgreSQL on 127.0.0.1 as postgres"
}

start_postgresql() {
    local version
    version=$(pg_version)
    if answers 5432; then
        say "PostgreSQL: already answering on 127.0.0.1:5432"
    else
        if [ ! -d "/etc/postgresql/$version/main" ]; then
            say "PostgreSQL: creating cluster $version/main"
            pg_createcluster "$version" main >/dev/null || die "pg_createcluster failed"
        fi
        say "PostgreSQL: starting cluster $version/main"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start \
            || die "pg_ctlcluster start failed"
        wait_for_port 5432 PostgreSQL
        say "PostgreSQL: up"
    fi
    ensure_pg_trust "$version"
    # The functional tests use the database "test".
    if [ "$(pg_psql -A -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]
    then
        say "PostgreSQL: creating database test"
        pg_psql -d postgres -c 'CREATE DATABASE test' || die "CREATE DATABASE test failed"
    fi
}

mysql_root() {
    mariadb -h 127.0.0.1 -P 3306 -u root --skip-password -N -B "$@"
}

# Debian's root@localhost logs in through the unix socket only; the tests
# connect over TCP as root without a password (as they do to PostgreSQL as
# postgres), so allow that once, through the socket, if it is not allowed yet.
ensure_mysql_root() {
    mysql_root -e 'SELECT 1' >/dev/null 2>&1 && return
    say "MariaDB: allowing root from 127.0.0.1 without password"
    mariadb -u root -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket \
        OR mysql_native_password USING PASSWORD('')" \
        || die "cannot change root@localhost through the unix socket"
    mysql_root -e 'SELECT 1' >/dev/null \
        || die "cannot connect to MariaDB on 127.0.0.1 as root"
}

start_mariadb() {
    if answers 3306; then
        say "MariaDB: already answering on 127.0.0.1:3306"
    else
        command -v mysqld_safe >/dev/null || die "MariaDB is not installed (no mysqld_safe)"
        [ -d /var/lib/mysql/mysql ] || quietly "$LOG_DIR/mariadb.log" \
            mariadb-install-db --user=mysql --datadir=/var/lib/mysql \
            || die "mariadb-install-db failed"
        install -d -o mysql -g mysql /run/mysqld
        say "MariaDB: starting"
        # mysqld_safe stays in the foreground and restarts mariadbd if it dies.
        nohup mysqld_safe --bind-address=127.0.0.1 >/dev/null 2>&1 &
        wait_for_port 3306 MariaDB
        say "MariaDB: up"
    fi
    ensure_mysql_root
    mysql_root -e 'CREATE DATABASE IF NOT EXISTS test' || die "CREATE DATABASE test failed"
}

install_packages
setup_venv
start_rabbitmq
start_postgresql
start_mariadb
say "done"
