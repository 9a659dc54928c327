# shellcheck shell=bash
# Shared by the reproduction scripts: build the programs, run the server,
# record with tcpdump, show sockets with ss (and netstat), clean up.
# Source it; it sets `set -euo pipefail` and an EXIT trap.

set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
work=$(mktemp -d)
server_pid=""
capture_pid=""
capturing=false

cleanup() {
    local status=$?
    if [ -n "$capture_pid" ]; then
        kill -INT "$capture_pid" 2>/dev/null || true
        wait "$capture_pid" 2>/dev/null || true
    fi
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# no_arguments "$@": for scripts that take none.
no_arguments() {
    if [ $# -ne 0 ]; then
        echo "usage: $0" >&2
        exit 2
    fi
}

say() {
    printf '\n== %s\n' "$*"
}

# Builds the server and client of the examples crate.
build_programs() {
    command -v cargo >/dev/null || die "cargo is not installed"
    (cd "$root" && cargo build --quiet -p tcpclose --bin tcpclose-server --bin tcpclose-client --bin tcpclose) || die "cannot build the programs"
}

# wait_for_line FILE PATTERN [SECONDS]: waits until FILE has a line matching
# the extended regular expression PATTERN.
wait_for_line() {
    local file=$1 pattern=$2 deadline=$((SECONDS + ${3:-10}))
    until grep -qE -- "$pattern" "$file" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || die "gave up waiting for /$pattern/ in $(basename "$file"): $(tail -n 3 "$file" 2>/dev/null)"
        sleep 0.05
    done
}

# wait_for_count FILE PATTERN COUNT: waits until FILE has COUNT lines
# matching the extended regular expression PATTERN.
wait_for_count() {
    local file=$1 pattern=$2 count=$3 deadline=$((SECONDS + 10))
    until [ "$(grep -cE -- "$pattern" "$file" 2>/dev/null)" -ge "$count" ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "gave up waiting for $count lines /$pattern/ in $(basename "$file")"
        sleep 0.05
    done
}

# start_server ARGS...: starts the server on $ADDR (default 127.0.0.1:8081)
# and sets $port to the port it listens on.
start_server() {
    "$bin/tcpclose-server" --listen "${ADDR:-127.0.0.1:8081}" "$@" >"$work/server.log" 2>&1 &
    server_pid=$!
    wait_for_line "$work/server.log" '^listening on |^server:'
    grep -q '^server:' "$work/server.log" && die "$(cat "$work/server.log")"
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/server.log")
    echo "server listening on port $port"
}

# stop_server: stops the server started by start_server.
stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# start_capture FILE: records the port's packets with tcpdump, if allowed.
start_capture() {
    pcap=$1
    if ! command -v tcpdump >/dev/null; then
        echo "tcpdump is not installed: no packets recorded (apt-get install tcpdump)"
        return
    fi
    # -s 256: headers only, so that bursts of 64 KiB loopback frames fit in
    # tcpdump's buffer (-B, in KiB) and none is dropped.
    tcpdump -i lo -nn -U -s 256 -B 32768 -w "$pcap" "tcp port $port" 2>"$work/tcpdump.log" &
    capture_pid=$!
    if ! (wait_for_line "$work/tcpdump.log" 'listening on|tcpdump:'); then
        die "tcpdump did not start: $(cat "$work/tcpdump.log")"
    fi
    if ! grep -q 'listening on' "$work/tcpdump.log"; then
        echo "tcpdump cannot capture (it needs root: run this script with sudo); showing sockets only"
        capture_pid=""
        return
    fi
    capturing=true
}

# stop_capture PATTERN: waits until the capture holds a packet whose
# tcpdump line matches PATTERN, then stops tcpdump.
stop_capture() {
    $capturing || return 0
    local deadline=$((SECONDS + 10))
    until tcpdump -nn -r "$pcap" 2>/dev/null | grep -qE -- "$1"; do
        [ "$SECONDS" -lt "$deadline" ] || die "the capture never showed /$1/"
        sleep 0.05
    done
    kill -INT "$capture_pid"
    wait "$capture_pid" 2>/dev/null || true
    capture_pid=""
    if grep -E '^[1-9][0-9]* packets dropped by kernel' "$work/tcpdump.log"; then
        die "tcpdump dropped packets: the capture is incomplete"
    fi
}

# show_sockets: what ss (and netstat, if installed) list for the port.
show_sockets() {
    say "ss -tan '( sport = :$port or dport = :$port )'"
    ss -tan "( sport = :$port or dport = :$port )"
    if command -v netstat >/dev/null; then
        say "netstat -tan | grep ':$port '"
        netstat -tan | grep ":$port " || true
    fi
}

# show_packets [FILTER]: the recorded packets, as tcpdump prints them; with
# a pcap-filter expression, only those that match it.
show_packets() {
    $capturing || return 0
    say "tcpdump -nn -r $pcap${1:+ \"$1\"}"
    tcpdump -nn -r "$pcap" ${1:+"$1"} 2>/dev/null
    echo "(open $pcap in Wireshark to see every packet)"
}

# run_client ARGS...: runs the client against the server and shows what it
# printed; its output stays in $work/client.log. A failing client is shown,
# not fatal.
run_client() {
    say "client $*"
    "$bin/tcpclose-client" --connect "127.0.0.1:$port" "$@" 2>&1 | tee "$work/client.log" || true
}

server_log() {
    say "server output"
    cat "$work/server.log"
}
