#!/usr/bin/env bash
# Writing after the peer closed: the client connects and closes; the server
# reads Ok(0), then writes twice. The first write succeeds and draws an RST;
# the second fails with BrokenPipe (EPIPE).
#
# usage: sudo examples/scripts/broken-pipe.sh
# env:   ADDR  where the server listens (default 127.0.0.1:8081; port 0: any)
#        PCAP  where tcpdump writes (default ./broken-pipe.pcap)
# Without root, tcpdump cannot capture: the script says so and shows ss only.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
no_arguments "$@"

build_programs
start_server --on-eof write
start_capture "${PCAP:-$PWD/broken-pipe.pcap}"

run_client
wait_for_line "$work/server.log" 'write\(1024 bytes\) -> Err'
stop_capture "> 127\.0\.0\.1\.$port: Flags \[R\]"
server_log
show_sockets
show_packets

say "what to look for"
cat <<TEXT
server output: the first write returned Ok(1024), the second
Err(BrokenPipe) "Broken pipe (os error 32)".
ss: no connection on port $port is left, only the listener: the RST ended
both sockets.
tcpdump: the client's FIN ([F.]), the server's 1024 bytes ([P.], length
1024), and the client's RST ([R]) in answer; nothing after the RST.
TEXT
