#!/usr/bin/env bash
# Create (or bring up to date) a RabbitMQ user for one nova_rt principal,
# with exactly the permissions that principal needs on one vhost, and no more.
#
#   tools/rabbitmq-least-privilege.sh [options] compute HOST
#   tools/rabbitmq-least-privilege.sh [options] placement HOST
#   tools/rabbitmq-least-privilege.sh [options] conductor [NAME]
#   tools/rabbitmq-least-privilege.sh [options] operator [NAME]
#
# Options:
#   --vhost VHOST       the vhost of transport_url (default /)
#   --exchange NAME     [DEFAULT] control_exchange (default openstack)
#   --user NAME         the RabbitMQ user (default nova-rt-ROLE[-HOST|-NAME])
#   --node NODE         passed to rabbitmqctl as -n NODE
#   --notifications     compute only: also allow the versioned notifications
#                       ([oslo_messaging_notifications] driver = messagingv2)
#   --password-stdin    read the password from the first line of stdin;
#                       otherwise a new user gets a generated password,
#                       printed once on stdout, and an existing user keeps
#                       the one it has
#   --print             only print the user and its permissions
#
# HOST is [DEFAULT] host of that daemon.  RABBITMQCTL names the rabbitmqctl
# command (default: rabbitmqctl).  Running it again is safe: the
# permissions are set, not added to.  Everything but a generated password
# goes to stderr.  doc/source/broker-security.rst explains every regex.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
    exit 2
}

die() {
    echo "rabbitmq-least-privilege: $*" >&2
    exit 2
}

vhost=/
exchange=openstack
user=
node=
notifications=0
password_stdin=0
print_only=0
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --vhost) [ $# -ge 2 ] || usage; vhost=$2; shift 2 ;;
        --exchange) [ $# -ge 2 ] || usage; exchange=$2; shift 2 ;;
        --user) [ $# -ge 2 ] || usage; user=$2; shift 2 ;;
        --node) [ $# -ge 2 ] || usage; node=$2; shift 2 ;;
        --notifications) notifications=1; shift ;;
        --password-stdin) password_stdin=1; shift ;;
        --print) print_only=1; shift ;;
        -h|--help) usage ;;
        --) shift; args+=("$@"); break ;;
        -*) die "unknown option $1" ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ ${#args[@]} -lt 1 ] || [ ${#args[@]} -gt 2 ]; then usage; fi
role=${args[0]}
name=${args[1]:-}

# Names go into regexes: allow what a hostname or an exchange name can be,
# and escape the one metacharacter among them.
valid_name() {
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]
}
quote_re() {
    printf '%s' "${1//./\\.}"
}
valid_name "$exchange" || die "--exchange: not a plain exchange name: $exchange"
E=$(quote_re "$exchange")

C=nova-rt-compute
P=nova-rt-placement
# oslo.messaging names its reply queues and a server's fanout queue after a
# random uuid4 (hex); [oslo_messaging_rabbit] use_queue_manager would name
# them otherwise and is not supported here.
UUID='[0-9a-f]{32}'
NOTIFY='versioned_notifications\.(info|error)'
NOTHING='^$'

case $role in
    compute|placement)
        [ -n "$name" ] || die "$role needs the HOST it runs on"
        valid_name "$name" || die "not a plain host name: $name"
        H=$(quote_re "$name") ;;
    conductor|operator)
        if [ -n "$name" ]; then
            valid_name "$name" || die "not a plain name: $name"
        fi ;;
    *) die "unknown role $role (compute, placement, conductor, operator)" ;;
esac
[ -n "$user" ] || user=nova-rt-$role${name:+-$name}
[ $notifications = 0 ] || [ "$role" = compute ] ||
    die "--notifications is for the compute role only"

# Resource names are queues and exchanges alike; a permission is a regex
# over them (configure: declare/delete; write: publish to an exchange, bind
# a queue; read: consume a queue, bind to an exchange).  Topic permissions
# on the control exchange then limit the routing keys used to publish
# (write) and to bind (read).
case $role in
    compute)
        # A server of topic nova-rt-compute, server HOST: oslo.messaging
        # declares the control exchange, the shared topic queue, the
        # server's own queue and a fanout exchange with a queue of its own,
        # binds them and consumes them.  It answers through the default
        # exchange, and calls placement as a client with a reply queue.
        queues="$C|$C\\.$H|${C}_fanout_$UUID"
        configure_re="$E|$queues|${C}_fanout|reply_$UUID"
        write_re="$E|amq\\.default|$queues"
        read_re="$E|$queues|${C}_fanout|reply_$UUID"
        topic_write="$P"
        topic_read="$C|$C\\.$H"
        if [ $notifications = 1 ]; then
            # The notifier declares and binds a queue named after the
            # routing key, so that nothing is lost before a consumer comes.
            configure_re+="|$NOTIFY"
            write_re+="|$NOTIFY"
            topic_write+="|$NOTIFY"
            topic_read+="|$NOTIFY"
        fi ;;
    placement)
        # Every placement process serves the shared topic queue; its own
        # queue is named after [DEFAULT] host and its pid.
        queues="$P|$P\\.$H\\.[0-9]+|${P}_fanout_$UUID"
        configure_re="$E|$queues|${P}_fanout"
        write_re="amq\\.default|$queues"
        read_re="$E|$queues|${P}_fanout"
        topic_write=
        topic_read="$P|$P\\.$H\\.[0-9]+" ;;
    conductor|operator)
        # Clients only: calls to any compute host and to placement.  What
        # each may call is [identity]'s business, not the broker's.
        configure_re="$E|reply_$UUID"
        write_re="$E"
        read_re="reply_$UUID"
        topic_write="$C\\.[A-Za-z0-9][A-Za-z0-9._-]*|$P"
        topic_read= ;;
esac
anchor() {
    if [ -n "$1" ]; then printf '^(%s)$' "$1"; else printf '%s' "$NOTHING"; fi
}
configure_re=$(anchor "$configure_re")
write_re=$(anchor "$write_re")
read_re=$(anchor "$read_re")
topic_write=$(anchor "$topic_write")
topic_read=$(anchor "$topic_read")

{
    echo "user      $user (vhost $vhost)"
    echo "configure $configure_re"
    echo "write     $write_re"
    echo "read      $read_re"
    echo "topic     exchange $exchange: write $topic_write read $topic_read"
} >&2
[ $print_only = 0 ] || exit 0

read -r -a ctl <<<"${RABBITMQCTL:-rabbitmqctl}"
[ -z "$node" ] || ctl+=(-n "$node")
ctl+=(--quiet)

password=
if [ $password_stdin = 1 ]; then
    IFS= read -r password || [ -n "$password" ] ||
        die "--password-stdin: nothing on stdin"
    [ -n "$password" ] || die "--password-stdin: empty password"
fi

# list_users prints "name<TAB>[tags]" one a line.
if "${ctl[@]}" list_users | cut -f1 | grep -qxF -- "$user"; then
    if [ -n "$password" ]; then
        # The password goes on stdin, never on a command line (ps, logs).
        printf '%s\n' "$password" | "${ctl[@]}" change_password "$user" >/dev/null
        echo "rabbitmq-least-privilege: $user exists; password changed" >&2
    else
        echo "rabbitmq-least-privilege: $user exists; password kept" >&2
    fi
else
    generated=0
    if [ -z "$password" ]; then
        password=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')
        generated=1
    fi
    printf '%s\n' "$password" | "${ctl[@]}" add_user "$user" >/dev/null
    if [ $generated = 1 ]; then
        echo "rabbitmq-least-privilege: $user created; its password (shown" \
            "once) is on stdout" >&2
        printf '%s\n' "$password"
    else
        echo "rabbitmq-least-privilege: $user created" >&2
    fi
fi
# No tags: not an administrator, no management access.
"${ctl[@]}" set_user_tags "$user" >/dev/null

"${ctl[@]}" set_permissions -p "$vhost" "$user" \
    "$configure_re" "$write_re" "$read_re" >/dev/null
# Replace, not add to: a topic permission left from an earlier run for
# another exchange would still apply.
"${ctl[@]}" clear_topic_permissions -p "$vhost" "$user" >/dev/null
"${ctl[@]}" set_topic_permissions -p "$vhost" "$user" "$exchange" \
    "$topic_write" "$topic_read" >/dev/null
echo "rabbitmq-least-privilege: permissions of $user on $vhost set" >&2
