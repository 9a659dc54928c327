#!/usr/bin/env bash
# The peer closes: a client connects and closes at once; the server reads
# Ok(0) and then leaks the stream (CLOSE-WAIT, no FIN) or drops it (FIN).
#
# usage: sudo examples/scripts/eof-close-wait.sh [leak|close]   (default: leak)
# env:   ADDR  where the server listens (default 127.0.0.1:8081; port 0: any)
#        PCAP  where tcpdump writes (default ./eof-close-wait-MODE.pcap)
# Without root, tcpdump cannot capture: the script says so and shows ss only.

mode=${1:-leak}
case $mode in
    leak | close) ;;
    *)
        echo "usage: $0 [leak|close]" >&2
        exit 2
        ;;
esac
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

build_programs
start_server --on-eof "$mode"
start_capture "${PCAP:-$PWD/eof-close-wait-$mode.pcap}"

run_client
if [ "$mode" = leak ]; then
    wait_for_line "$work/server.log" 'keeping the stream'
    # The last packet to wait for: the server's ACK of the client's FIN.
    stop_capture "\.$port > .*Flags \[\.\], ack 2,"
else
    wait_for_line "$work/server.log" 'dropped the stream'
    # The last packet: the client's ACK of the server's FIN.
    stop_capture "> 127\.0\.0\.1\.$port: Flags \[\.\], ack 2,"
fi
server_log
show_sockets
show_packets

say "what to look for"
if [ "$mode" = leak ]; then
    cat <<TEXT
ss: the server's socket (local port $port) is CLOSE-WAIT and the client's is
FIN-WAIT-2: the client sent its FIN, the server's kernel acknowledged it,
and the server program never closed. It stays so until the server exits.
tcpdump: the client's FIN ([F.]) and the server's ACK ([.]), and no FIN
from port $port.
TEXT
else
    cat <<TEXT
ss: only the client's socket is left, in TIME-WAIT; the server's is gone.
tcpdump: the client's FIN ([F.]), the server's ACK, then the server's FIN
([F.]) from port $port and the client's last ACK.
Now and then the server's kernel sends one more ACK after its FIN: the
client's TIME-WAIT answers it, the server, whose socket is gone, answers
that with an RST ([R]), and an RST ends a TIME-WAIT at once (with
net.ipv4.tcp_rfc1337 = 0, the default). Then ss shows no client socket.
TEXT
fi
