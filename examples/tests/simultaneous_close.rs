//! Simultaneous close: both sides send their FIN before receiving the
//! other's. On loopback the kernel delivers a FIN before the other side can
//! send its own, so the test holds the FINs back: a socket filter on each
//! side discards everything that arrives, both sides shut down, and the
//! filters are lifted one at a time, so each FIN arrives as a
//! retransmission. Runs in the lab's sandbox: no root needed.

use std::net::Shutdown;

use libtest_mimic::{Arguments, Trial};
use tcpclose::observe::{End, State};
use tcpclose::sockopt::{discard_everything, hear_again};
use tcpclose::{netns, sandbox};

fn main() {
    sandbox::enter();
    let args = Arguments::from_args();
    let trials = vec![Trial::test(
        "both_sides_keep_time_wait_after_a_simultaneous_close",
        || Ok(netns::isolated(both_sides_keep_time_wait_after_a_simultaneous_close)?),
    )];
    libtest_mimic::run(&args, trials).exit();
}

// ANCHOR: simultaneous_close
fn both_sides_keep_time_wait_after_a_simultaneous_close() {
    let (client, server) = tcpclose::pair().unwrap();
    let client_end = End::of(&client).unwrap();
    let server_end = client_end.peer();
    // Neither side hears the other for now.
    discard_everything(&client).unwrap();
    discard_everything(&server).unwrap();

    client.shutdown(Shutdown::Write).unwrap();
    server.shutdown(Shutdown::Write).unwrap();
    // Each sent a FIN that nobody received: both FIN_WAIT_1.
    assert_eq!(client_end.state().unwrap(), Some(State::FinWait1));
    assert_eq!(server_end.state().unwrap(), Some(State::FinWait1));

    // The server hears again: the client's retransmitted FIN arrives while
    // the server's own FIN is unacknowledged, so the server goes CLOSING
    // (its ACK is still discarded by the client's filter).
    hear_again(&server).unwrap();
    server_end.wait_for(State::Closing).unwrap();
    assert_eq!(client_end.state().unwrap(), Some(State::FinWait1));

    // The client hears again: the server's FIN, which also acknowledges
    // the client's, takes it to TIME_WAIT; its ACK takes the server there.
    hear_again(&client).unwrap();
    client_end.wait_for(State::TimeWait).unwrap();
    server_end.wait_for(State::TimeWait).unwrap();
}
// ANCHOR_END: simultaneous_close
