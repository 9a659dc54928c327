#!/usr/bin/env bash
# An RST while ESTABLISHED: the server reads the client's request, writes
# 10 bytes and closes with SO_LINGER 0 (an RST). The client reads the 10
# bytes, then Err(ConnectionReset).
#
# usage: sudo examples/scripts/reset-while-reading.sh
# env:   ADDR  where the server listens (default 127.0.0.1:8081; port 0: any)
#        PCAP  where tcpdump writes (default ./reset-while-reading.pcap)

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
no_arguments "$@"

build_programs
start_server --respond 10 --linger 0
start_capture "${PCAP:-$PWD/reset-while-reading.pcap}"

run_client --send hello --read
wait_for_line "$work/server.log" 'RST sent'
stop_capture "127\\.0\\.0\\.1\\.$port > .*Flags \\[R"
server_log
show_sockets
show_packets

say "what to look for"
cat <<TEXT
client output: read 10 bytes, then Err(ConnectionReset) "Connection reset
by peer (os error 104)": queued bytes first, then the reset.
tcpdump: the server's 10 bytes ([P.], length 10), then its RST ([R.]); no FIN.
ss: nothing left of the connection on either side.
TEXT
