//! `lingering_close` and the experiment that justifies it.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use tcpclose::close::lingering_close;
use tcpclose::experiment::{self, CloseStyle};
use tcpclose::observe::{End, State};

#[test]
fn lingering_close_loses_no_response_where_the_naive_close_does() {
    let naive = experiment::run(1000, CloseStyle::Naive).unwrap();
    let lingering = experiment::run(1000, CloseStyle::Lingering).unwrap();
    // Reported, not asserted as a number: how many the naive close loses
    // depends on timing. That it loses some is what the chapter claims.
    eprintln!("naive close: {naive:?}\nlingering close: {lingering:?}");
    assert!(naive.incomplete + naive.reset > 0, "{naive:?}");
    assert_eq!(lingering.incomplete, 0, "{lingering:?}");
    assert_eq!(lingering.reset, 0, "{lingering:?}");
}

#[test]
fn lingering_close_discards_what_the_peer_still_sends_and_sends_a_fin() {
    let (mut client, mut server) = tcpclose::pair().unwrap();
    let server_end = End::of(&server).unwrap();
    client.write_all(&[1; 5000]).unwrap();
    server.write_all(b"bye").unwrap();
    let closer = std::thread::spawn(move || lingering_close(server, Duration::from_secs(5)));
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).unwrap(); // Ok(0): the FIN, not an RST
    assert_eq!(answer, b"bye");
    drop(client);
    assert_eq!(closer.join().unwrap().unwrap(), 5000);
    server_end.wait_for(State::TimeWait).unwrap();
}

#[test]
fn lingering_close_gives_up_after_its_timeout() {
    let (client, server) = tcpclose::pair().unwrap();
    let start = Instant::now();
    let err = lingering_close(server, Duration::from_millis(200)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(200));
    drop(client);
}
