#!/usr/bin/env bash
# Diagnosing a live process: a server keeps the streams its clients closed
# (CLOSE-WAIT). Look at it as in production: ss -tanpo, /proc/PID/fd, lsof,
# nstat, tcpdump with a filter for FIN and RST, and tcpclose inspect.
#
# usage: sudo examples/scripts/diagnose.sh
# env:   ADDR  where the server listens (default 127.0.0.1:8081; port 0: any)
#        PCAP  where tcpdump writes (default ./diagnose.pcap)
# Without root, tcpdump cannot capture: the script says so and goes on.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
no_arguments "$@"

build_programs
start_server --on-eof leak
start_capture "${PCAP:-$PWD/diagnose.pcap}"
# nstat prints how much each counter moved since its last run: start now.
export NSTAT_HISTORY="$work/nstat.history"
nstat -n

for _ in 1 2; do
    run_client
done
wait_for_count "$work/server.log" 'keeping the stream' 2
# The last packets to wait for: the server's ACKs of the clients' FINs.
stop_capture "\.$port > .*Flags \[\.\], ack 2,"

say "ss -tanpo state close-wait '( sport = :$port )'"
ss -tanpo state close-wait "( sport = :$port )"

say "the sockets among /proc/$server_pid/fd/*"
for fd in "/proc/$server_pid/fd/"*; do
    link=$(readlink "$fd") || continue
    case $link in
        socket:*) echo "${fd##*/} -> $link" ;;
    esac
done

say "lsof -a -p $server_pid -i TCP"
if command -v lsof >/dev/null; then
    lsof -nP -a -p "$server_pid" -i TCP
else
    echo "lsof is not installed (apt-get install lsof)"
fi

say "nstat TcpPassiveOpens TcpExtTCPAbortOnClose TcpOutRsts"
nstat -z TcpPassiveOpens TcpExtTCPAbortOnClose TcpOutRsts

show_packets "tcp[tcpflags] & (tcp-fin|tcp-rst) != 0"

say "tcpclose inspect $server_pid"
"$bin/tcpclose" inspect "$server_pid"

say "what to look for"
cat <<TEXT
ss: two sockets of the server (port $port) in CLOSE-WAIT, with the server's
process and descriptor (users:(("tcpclose-server",pid=$server_pid,fd=N))).
/proc/$server_pid/fd and lsof: the same descriptors, as socket:[INODE] and as
CLOSE_WAIT connections.
nstat: two connections accepted, no abort, no RST sent.
tcpdump: the clients' FINs ([F.]) and nothing from port $port: the server
never closes.
tcpclose inspect: each CLOSE_WAIT with its descriptor, and what to do.
TEXT
