#!/usr/bin/env bash
# The lingering close: the client sends a 16 KiB request; the server reads
# its first KiB, writes a 256 KiB response and closes, either by dropping
# the stream (naive: RST, the client sees ConnectionReset) or with
# lingering_close (shutdown(Write), read to the client's FIN, drop: FINs
# only, the client gets the whole response and Ok(0)).
#
# usage: sudo examples/scripts/lingering-close.sh [naive|lingering]   (default: lingering)
# env:   ADDR  where the server listens (default 127.0.0.1:8081; port 0: any)
#        PCAP  where tcpdump writes (default ./lingering-close-MODE.pcap)

mode=${1:-lingering}
case $mode in
    naive) close=drop ;;
    lingering) close=lingering ;;
    *)
        echo "usage: $0 [naive|lingering]" >&2
        exit 2
        ;;
esac
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

build_programs
start_server --respond 262144 --close "$close"
start_capture "${PCAP:-$PWD/lingering-close-$mode.pcap}"

run_client --send-bytes 16384 --read
if [ "$mode" = naive ]; then
    wait_for_line "$work/server.log" 'dropped the stream'
    stop_capture "127\\.0\\.0\\.1\\.$port > .*Flags \\[R"
else
    wait_for_line "$work/server.log" 'lingering close'
    stop_capture "> 127\\.0\\.0\\.1\\.$port: Flags \\[F"
fi
server_log
show_sockets
show_packets 'tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0'

say "what to look for"
if [ "$mode" = naive ]; then
    cat <<TEXT
client output: read -> Err(ConnectionReset) instead of Ok(0): the client
cannot tell whether it has the whole response.
tcpdump: an RST ([R.]) from port $port, no FIN from it.
TEXT
else
    cat <<TEXT
client output: read 262144 bytes, then Ok(0): the whole response and a
clean end.
server output: the lingering close discarded the unread part of the request.
tcpdump: a FIN ([F.] or [FP.]) from each side and no RST; ss: the server, which
closed first, keeps TIME-WAIT.
TEXT
fi
