#!/usr/bin/env bash
# Connection refused: the client connects to a port nobody listens on. The
# kernel answers the SYN with RST ACK and connect fails with
# ConnectionRefused (os error 111).
#
# usage: sudo examples/scripts/connect-refused.sh
# env:   ADDR  a port to try (default 127.0.0.1:8081; port 0: a free one)
#        PCAP  where tcpdump writes (default ./connect-refused.pcap)

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
no_arguments "$@"

build_programs
# Find the port, then stop the server: nobody listens there any more.
start_server
stop_server
if [ -n "$(ss -Htln "sport = :$port")" ]; then
    die "something listens on port $port; choose another with ADDR=127.0.0.1:PORT"
fi
start_capture "${PCAP:-$PWD/connect-refused.pcap}"

run_client
stop_capture "127\\.0\\.0\\.1\\.$port > .*Flags \\[R"
show_sockets
show_packets

say "what to look for"
cat <<TEXT
client output: cannot connect ... Connection refused (os error 111).
tcpdump: the client's SYN ([S]) and, from port $port, RST ACK ([R.]).
ss: nothing on port $port.
TEXT
