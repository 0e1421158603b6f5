#!/usr/bin/env bash
# shellcheck shell=bash
# devstack plugin for nova_rt: enable with
#   enable_plugin nova_rt https://opendev.example/nova_rt
# in local.conf. Installs the project, writes $NOVA_RT_CONF from devstack's
# RabbitMQ (and PostgreSQL, when enabled) settings and runs both services.
#
# The variables and functions used here (DEST, STACK_USER, iniset,
# run_process, get_transport_url ...) are devstack's.
# shellcheck disable=SC2154

_XTRACE_NOVA_RT=$(set +o | grep xtrace)
set +o xtrace

function install_nova_rt {
    setup_develop "$NOVA_RT_DIR"
}

function configure_nova_rt {
    sudo install -d -o "$STACK_USER" -m 0755 "$NOVA_RT_CONF_DIR"
    # The claim store must be readable by the service user only.
    sudo install -d -o "$STACK_USER" -m 0700 "$NOVA_RT_STATE_PATH"
    rm -f "$NOVA_RT_CONF"

    iniset "$NOVA_RT_CONF" DEFAULT transport_url "$(get_transport_url)"
    iniset "$NOVA_RT_CONF" DEFAULT state_path "$NOVA_RT_STATE_PATH"
    iniset "$NOVA_RT_CONF" DEFAULT debug "$ENABLE_DEBUG_LOG_LEVEL"
    iniset "$NOVA_RT_CONF" libvirt connection_uri "$NOVA_RT_LIBVIRT_URI"
    # devstack's database, MySQL (its default, mysql+pymysql://) or
    # PostgreSQL; SQLite under state_path only when it runs neither.
    if is_service_enabled mysql postgresql; then
        recreate_database "$NOVA_RT_PLACEMENT_DB"
        local url
        url=$(database_connection_url "$NOVA_RT_PLACEMENT_DB")
        # nova_rt speaks to PostgreSQL through psycopg 3.
        iniset "$NOVA_RT_CONF" placement_database connection \
            "${url/postgresql:\/\//postgresql+psycopg://}"
    else
        echo "nova_rt: neither mysql nor postgresql enabled;" \
            "placement uses SQLite under $NOVA_RT_STATE_PATH"
    fi
    configure_nova_rt_identity
}

# Every message signed and checked ([identity] enforce = true): a key pair for
# this host, for placement and for the operator the CLI signs as. Placement
# and the compute daemon share $NOVA_RT_CONF and each signs as its own
# principal (the host name, nova-rt-placement); the CLI reads
# $NOVA_RT_ADMIN_CONF after it to sign as $NOVA_RT_OPERATOR.
function configure_nova_rt_identity {
    local keys_dir=$NOVA_RT_CONF_DIR/keys principal bin_dir
    bin_dir=$(get_python_exec_prefix)
    sudo install -d -o "$STACK_USER" -m 0755 "$keys_dir"
    iniset "$NOVA_RT_CONF" identity enforce True
    iniset "$NOVA_RT_CONF" identity keys_dir "$keys_dir"
    iniset "$NOVA_RT_CONF" identity operators "$NOVA_RT_OPERATOR"
    iniset "$NOVA_RT_CONF" identity conductors "$NOVA_RT_OPERATOR"
    for principal in "$(hostname)" nova-rt-placement "$NOVA_RT_OPERATOR"; do
        if [[ ! -f "$keys_dir/$principal.key" ]]; then
            "$bin_dir/nova-rt-manage" --config-file "$NOVA_RT_CONF" \
                identity create-key "$principal"
        fi
    done
    rm -f "$NOVA_RT_ADMIN_CONF"
    iniset "$NOVA_RT_ADMIN_CONF" identity principal "$NOVA_RT_OPERATOR"
}

function start_nova_rt {
    local bin_dir
    bin_dir=$(get_python_exec_prefix)
    if is_service_enabled nova-rt-placement; then
        # Placement refuses to start below the newest schema and, as
        # OpenStack Placement, does not migrate by itself by default.
        "$bin_dir/nova-rt-manage" --config-file "$NOVA_RT_CONF" db sync
    fi
    run_process nova-rt-placement "$bin_dir/nova-rt-placement --config-file $NOVA_RT_CONF"
    # In the libvirt group, to use libvirt's read-write socket.
    run_process nova-rt-compute "$bin_dir/nova-rt-compute --config-file $NOVA_RT_CONF" \
        "${LIBVIRT_GROUP:-libvirt}"
}

function stop_nova_rt {
    stop_process nova-rt-compute
    stop_process nova-rt-placement
}

function cleanup_nova_rt {
    sudo rm -rf "$NOVA_RT_STATE_PATH" "$NOVA_RT_CONF" "$NOVA_RT_ADMIN_CONF" \
        "$NOVA_RT_CONF_DIR/keys"
}

if is_service_enabled nova-rt-compute nova-rt-placement; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing nova_rt"
        install_nova_rt
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring nova_rt"
        configure_nova_rt
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Starting nova_rt"
        start_nova_rt
    fi
    if [[ "$1" == "unstack" ]]; then
        stop_nova_rt
    fi
    if [[ "$1" == "clean" ]]; then
        cleanup_nova_rt
    fi
fi

$_XTRACE_NOVA_RT
