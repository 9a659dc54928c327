//! Simultaneous close: both sides send their FIN before receiving the
//! other's. On loopback the kernel delivers a FIN before the other side can
//! send its own, so the test makes the FINs cross: in a private network
//! namespace, nftables drops every FIN until both sides have sent one; the
//! retransmitted FINs then cross.

use std::net::Shutdown;

use tcpclose::netns;
use tcpclose::observe::{End, State};

// ANCHOR: simultaneous_close
#[test]
fn both_sides_keep_time_wait_after_a_simultaneous_close() {
    netns::isolated(|| {
        let (client, server) = tcpclose::pair().unwrap();
        let port = server.local_addr().unwrap().port();
        netns::nft(&format!(
            "table inet hold_fins {{\n chain output {{\n  type filter hook output priority 0;\n  \
             tcp sport {port} tcp flags fin drop\n  tcp dport {port} tcp flags fin drop\n }}\n}}\n"
        ))
        .unwrap();

        client.shutdown(Shutdown::Write).unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        let client_end = End::of(&client).unwrap();
        // Each sent a FIN that nobody received: both FIN_WAIT_1.
        assert_eq!(client_end.state().unwrap(), Some(State::FinWait1));
        assert_eq!(client_end.peer().state().unwrap(), Some(State::FinWait1));

        netns::nft("delete table inet hold_fins").unwrap();
        // The retransmitted FINs cross: FIN_WAIT_1 -> CLOSING -> TIME_WAIT.
        client_end.wait_for(State::TimeWait).unwrap();
        client_end.peer().wait_for(State::TimeWait).unwrap();
    })
    .expect("a network namespace needs root");
}
// ANCHOR_END: simultaneous_close
