#!/bin/sh
# A private libvirt daemon for libvirt's test driver, reached through the remote driver
# (test+unix:///ABS/node.xml?socket=SOCKET), as an agent reaches qemu:///system in
# production: the test driver then runs in the daemon, not in the client process.
#
#   libvirtd-test-driver.sh start DIR    start (or find running) the daemon of DIR;
#                                        prints the socket path on stdout
#   libvirtd-test-driver.sh stop DIR     stop it (no-op when not running)
#   libvirtd-test-driver.sh status DIR   prints "PID SOCKET" and exits 0 when running, 1 if not
#
# Then: virsh -c "test+unix:///abs/node.xml?socket=$(libvirtd-test-driver.sh start /tmp/d)" list
#
# What keeps it private and working on a host without any libvirt setup:
# - Everything lives under DIR: config, UNIX sockets (DIR/sock), pid file, log, and the
#   daemon's XDG runtime/config/cache directories. No TCP, no systemd, no polkit
#   (auth "none" on sockets only its user (and root) can open).
# - LIBVIRT_DRIVER_DIR points at an empty directory, so libvirtd loads none of the
#   hypervisor/storage/network driver modules (the QEMU driver would fail to initialise
#   without a libvirt-qemu user, and the others touch system state); the test driver is
#   built into libvirt.so and the remote server into libvirtd, so nothing is lost.
# - Run as root, the daemon runs as LIBVIRTD_TEST_USER (default: nobody), i.e. as a
#   *session* daemon, which keeps all of its state under DIR. LIBVIRTD_TEST_USER=root
#   runs it privileged instead; libvirtd then also creates /run/libvirt/common/system.token.
#   The node XML files given in URIs must be readable by that user, and DIR's parents
#   searchable by it. Run as another user, the daemon runs as that user.
#
# Environment:
#   LIBVIRTD_TEST_USER          daemon user when run as root (default nobody)
#   LIBVIRTD_TEST_TIMEOUT       seconds to wait for the socket / for the exit (default 15)
#   LIBVIRTD_TEST_IDLE_TIMEOUT  libvirtd --timeout: exit after that many seconds without
#                               clients (default 0 = never); a safety net for callers
#                               that may die without calling stop
#   LIBVIRTD_TEST_LOG_LEVEL     libvirt log level for DIR/libvirtd.log (1 debug .. 4 error;
#                               default 3)
# libvirtd is installed with apt-get (package libvirt-daemon) when missing and run as root.
set -eu

prog=$(basename "$0")
die() {
    echo "$prog: $*" >&2
    exit 1
}
usage() {
    echo "usage: $prog start|stop|status DIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
case "$2" in
/*) dir=$2 ;;
*) dir=$(pwd)/$2 ;;
esac
dir=${dir%/}
[ -n "$dir" ] || die "DIR must not be /"

timeout_s=${LIBVIRTD_TEST_TIMEOUT:-15}
idle_timeout=${LIBVIRTD_TEST_IDLE_TIMEOUT:-0}
log_level=${LIBVIRTD_TEST_LOG_LEVEL:-3}
case "$timeout_s$idle_timeout$log_level" in
*[!0-9]*) die "LIBVIRTD_TEST_TIMEOUT, LIBVIRTD_TEST_IDLE_TIMEOUT and LIBVIRTD_TEST_LOG_LEVEL must be integers" ;;
esac

conf=$dir/libvirtd.conf
sock=$dir/sock/libvirt-sock
pidfile=$dir/run/libvirtd.pid
log=$dir/libvirtd.log
out=$dir/libvirtd.out

# The running daemon of DIR, if any: its pid on stdout, status 0.
running_pid() {
    [ -f "$pidfile" ] || return 1
    _rp=$(cat "$pidfile" 2>/dev/null) || return 1
    case "$_rp" in '' | *[!0-9]*) return 1 ;; esac
    # Ours and alive: a libvirtd started with this DIR's config (not a recycled pid, not
    # a zombie, whose cmdline is empty).
    tr '\0' '\n' <"/proc/$_rp/cmdline" 2>/dev/null | grep -qxF "$conf" || return 1
    echo "$_rp"
}

find_libvirtd() {
    for c in "$(command -v libvirtd 2>/dev/null || true)" /usr/sbin/libvirtd /usr/local/sbin/libvirtd; do
        if [ -n "$c" ] && [ -x "$c" ]; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

ensure_libvirtd() {
    if find_libvirtd >/dev/null; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "libvirtd not found; install the libvirt-daemon package (as root: apt-get install -y libvirt-daemon)"
    command -v apt-get >/dev/null || die "libvirtd not found and apt-get is not available; install libvirtd"
    echo "$prog: libvirtd not found; installing libvirt-daemon with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! timeout 600 apt-get install -y --no-install-recommends libvirt-daemon >&2; then
        timeout 600 apt-get update >&2 || true
        timeout 600 apt-get install -y --no-install-recommends libvirt-daemon >&2 ||
            die "apt-get install libvirt-daemon failed"
    fi
    find_libvirtd >/dev/null || die "libvirt-daemon installed but no libvirtd binary found"
}

# Wait (bounded) until the daemon of DIR accepts connections on its socket.
wait_socket() {
    deadline=$(($(date +%s) + timeout_s))
    while :; do
        if [ -S "$sock" ] && running_pid >/dev/null; then
            return 0
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.1
    done
}

start() {
    if pid=$(running_pid) && [ -S "$sock" ]; then
        echo "$sock"
        return 0
    fi
    ensure_libvirtd
    libvirtd=$(find_libvirtd)

    user=$(id -un)
    if [ "$(id -u)" -eq 0 ]; then
        user=${LIBVIRTD_TEST_USER:-nobody}
        id "$user" >/dev/null 2>&1 || die "user $user does not exist (set LIBVIRTD_TEST_USER)"
    fi

    mkdir -p "$dir"
    # Leftovers of a daemon that died without cleaning up.
    rm -f "$pidfile" "$dir/sock/libvirt-sock" "$dir/sock/libvirt-sock-ro" "$dir/sock/libvirt-admin-sock"
    mkdir -p "$dir/sock" "$dir/run" "$dir/home" "$dir/drivers"
    chmod 0700 "$dir/run"
    [ -z "$(ls -A "$dir/drivers")" ] || die "$dir/drivers must be empty (it is the daemon's driver module directory)"
    cat >"$conf" <<EOF
# Written by $prog: a private libvirtd for libvirt's test driver.
unix_sock_dir = "$dir/sock"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "$log_level:file:$log"
EOF
    : >"$out"

    set -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        HOME="$dir/home" XDG_RUNTIME_DIR="$dir/run" \
        XDG_CONFIG_HOME="$dir/home/.config" XDG_CACHE_HOME="$dir/home/.cache" \
        LIBVIRT_DRIVER_DIR="$dir/drivers"
    if [ "$(id -u)" -eq 0 ] && [ "$user" != root ]; then
        chown -R "$user" "$dir/sock" "$dir/run" "$dir/home" "$dir/drivers"
        touch "$log" && chown "$user" "$log"
        chmod a+r "$conf"
        setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups \
            test -r "$conf" -a -w "$dir/sock" ||
            die "user $user cannot reach $dir (its parent directories must be searchable by $user, or set LIBVIRTD_TEST_USER=root)"
        set -- "$@" setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups
    fi
    set -- "$@" "$libvirtd" --daemon --config "$conf" --pid-file "$pidfile"
    [ "$idle_timeout" -eq 0 ] || set -- "$@" --timeout "$idle_timeout"

    # --daemon: libvirtd forks into its own session and returns once its sockets are
    # listening (or with an error status).
    if ! (cd / && timeout "$timeout_s" "$@" </dev/null >>"$out" 2>&1); then
        echo "$prog: libvirtd failed to start; $out:" >&2
        cat "$out" >&2
        [ -f "$log" ] && { echo "$log (last lines):" >&2; tail -n 20 "$log" >&2; }
        exit 1
    fi
    if ! wait_socket; then
        echo "$prog: no libvirtd socket at $sock after ${timeout_s}s" >&2
        cat "$out" >&2
        [ -f "$log" ] && tail -n 20 "$log" >&2
        stop >/dev/null 2>&1 || true
        exit 1
    fi
    echo "$sock"
}

stop() {
    if ! pid=$(running_pid); then
        rm -f "$pidfile"
        echo "$prog: no libvirtd running for $dir" >&2
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(($(date +%s) + timeout_s))
    while [ -d "/proc/$pid" ] && running_pid >/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "$prog: libvirtd $pid still running after ${timeout_s}s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    rm -f "$pidfile" "$dir/sock/libvirt-sock" "$dir/sock/libvirt-sock-ro" "$dir/sock/libvirt-admin-sock"
    echo "$prog: stopped libvirtd $pid" >&2
}

status() {
    if pid=$(running_pid) && [ -S "$sock" ]; then
        echo "$pid $sock"
        return 0
    fi
    echo "$prog: no libvirtd running for $dir" >&2
    return 1
}

case "$cmd" in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
