#!/usr/bin/env bash
# SO_LINGER 1 s with a server that does not read yet: the client fills the
# buffers and closes; close blocks for the full second. Then the client's
# orphaned socket keeps the data and still delivers it, with a FIN and no RST,
# once the server reads (after its 3 s hold).
#
# usage: sudo examples/scripts/linger-timeout.sh
# env:   ADDR  where the server listens (default 127.0.0.1:8081; port 0: any)
#        PCAP  where tcpdump writes (default ./linger-timeout.pcap)

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
no_arguments "$@"

build_programs
start_server --hold 3
start_capture "${PCAP:-$PWD/linger-timeout.pcap}"

run_client --fill --linger 1
# The client has exited; the server is still holding: the orphan is visible.
show_sockets
wait_for_line "$work/server.log" 'then read -> Ok\(0\)'
stop_capture "> 127\\.0\\.0\\.1\\.$port: Flags \\[F"
server_log
show_packets 'tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0'

say "what to look for"
cat <<TEXT
client output: close took about 1 s, the linger time, although nothing was
delivered in that time.
ss (taken after the client exited): the client's socket, now owned by no
process, in FIN-WAIT-1 with megabytes in its Send-Q.
server output: after its hold it read every byte the client queued, then
Ok(0): the data was not lost when the linger time ran out.
tcpdump: the client's FIN ([FP.], riding on its last data) and no RST at all.
TEXT
