#!/usr/bin/env bash
# Closing with unread data: the client sends a 16 KiB request; the server
# reads only its first KiB, writes a 1 MB response and drops the stream.
# The unread bytes make the kernel send RST instead of FIN, and the part of
# the response still queued on the server is lost.
#
# usage: sudo examples/scripts/unread-data-rst.sh
# env:   ADDR  where the server listens (default 127.0.0.1:8081; port 0: any)
#        PCAP  where tcpdump writes (default ./unread-data-rst.pcap)

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
no_arguments "$@"

build_programs
start_server --respond 1000000
start_capture "${PCAP:-$PWD/unread-data-rst.pcap}"
aborts_before=$(nstat -az TcpExtTCPAbortOnClose | awk '/TcpExtTCPAbortOnClose/ {print $2}')

# --hold 0.5: the client waits before reading, so the server's close comes
# while most of the response is still queued on the server.
run_client --send-bytes 16384 --hold 0.5 --read
wait_for_line "$work/server.log" 'dropped the stream'
stop_capture "127\\.0\\.0\\.1\\.$port > .*Flags \\[R"
aborts_after=$(nstat -az TcpExtTCPAbortOnClose | awk '/TcpExtTCPAbortOnClose/ {print $2}')
server_log
show_sockets
say "nstat -az TcpExtTCPAbortOnClose"
echo "before: $aborts_before, after: $aborts_after"
show_packets 'tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0'

say "what to look for"
cat <<TEXT
server output: it dropped the stream with bytes of the request unread.
client output: it read only part of the 1000000 bytes, then
Err(ConnectionReset): the rest of the response was lost with the RST.
nstat: TcpExtTCPAbortOnClose went up: the kernel counts these resets.
tcpdump: from port $port an RST ([R.]) and no FIN ([F.]).
ss: no socket of the connection is left, not even TIME-WAIT.
TEXT
