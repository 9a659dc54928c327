#!/usr/bin/env bash
# SO_LINGER 0: the client closes with a zero linger. It sends an RST instead
# of a FIN and keeps no TIME-WAIT; the server's read fails with
# ConnectionReset instead of returning Ok(0).
#
# usage: sudo examples/scripts/linger-zero.sh
# env:   ADDR  where the server listens (default 127.0.0.1:8081; port 0: any)
#        PCAP  where tcpdump writes (default ./linger-zero.pcap)

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
no_arguments "$@"

build_programs
start_server
start_capture "${PCAP:-$PWD/linger-zero.pcap}"

run_client --linger 0
wait_for_line "$work/server.log" 'read -> Err'
stop_capture "> 127\\.0\\.0\\.1\\.$port: Flags \\[R"
server_log
show_sockets
show_packets

say "what to look for"
cat <<TEXT
client output: closed with SO_LINGER 0: RST sent.
server output: read -> Err(ConnectionReset), not Ok(0).
tcpdump: the client's RST ([R.]) and no FIN from either side.
ss: no TIME-WAIT: the client that closed first kept nothing (compare with
eof-close-wait.sh close, where it keeps TIME-WAIT).
TEXT
