//! The lab library itself: the kernel table and the capture, over IPv4 and
//! IPv6, each segment seen once.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use libtest_mimic::{Arguments, Trial};
use tcpclose::observe::{End, State, TimerKind};
use tcpclose::wire::Capture;

fn main() {
    // Capture needs CAP_NET_RAW: the sandbox gives it to any user.
    tcpclose::sandbox::enter();
    let args = Arguments::from_args();
    let tests: [(&str, fn()); 7] = [
        (
            "a_gone_end_is_gone_while_its_listener_lives",
            a_gone_end_is_gone_while_its_listener_lives,
        ),
        ("sock_diag_and_proc_agree", sock_diag_and_proc_agree),
        ("observes_ipv4", observes_ipv4),
        ("observes_ipv6", observes_ipv6),
        ("captures_ipv4", captures_ipv4),
        ("captures_ipv6", captures_ipv6),
        (
            "wait_until_times_out_with_a_message",
            wait_until_times_out_with_a_message,
        ),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            Trial::test(name, move || {
                test();
                Ok(())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn pair_on(addr: &str) -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(addr).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

fn observe_both_ends(addr: &str) {
    let (mut client, mut server) = pair_on(addr);
    let server_end = End::of(&server).unwrap();
    assert_eq!(server_end.state().unwrap(), Some(State::Established));
    assert_eq!(server_end.peer(), End::of(&client).unwrap());

    client.write_all(&[7; 100]).unwrap();
    // Unread bytes show in the server's receive queue (Recv-Q in ss).
    tcpclose::wait::until("100 bytes queued", tcpclose::wait::DEFAULT_DEADLINE, || {
        Ok(server_end.view()?.filter(|v| v.recv_queue == 100))
    })
    .unwrap();

    drop(client);
    server_end.wait_for(State::CloseWait).unwrap();
    // Read what arrived: closing with unread bytes would send RST, not FIN.
    assert_eq!(server.read_to_end(&mut Vec::new()).unwrap(), 100);
    server_end.peer().wait_for(State::FinWait2).unwrap();
    drop(server);
    server_end.wait_gone().unwrap();
    server_end.peer().wait_for(State::TimeWait).unwrap();
}

fn observes_ipv4() {
    observe_both_ends("127.0.0.1:0");
}

fn observes_ipv6() {
    observe_both_ends("[::1]:0");
}

fn capture_on(addr: &str) {
    let listener = TcpListener::bind(addr).unwrap();
    let server_addr = listener.local_addr().unwrap();
    let capture = Capture::start(server_addr).expect("capture needs CAP_NET_RAW");
    let mut client = TcpStream::connect(server_addr).unwrap();
    let client_addr = client.local_addr().unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"hello").unwrap();
    drop(client);
    assert_eq!(server.read_to_end(&mut Vec::new()).unwrap(), 5);
    drop(server);
    End {
        local: client_addr,
        remote: server_addr,
    }
    .wait_for(State::TimeWait)
    .unwrap();

    let segments = capture.finish().unwrap();
    let flags: Vec<String> = segments
        .iter()
        .map(|s| format!("{} {}", s.src == client_addr, s.flags))
        .collect();
    // Each segment once,
    // in the order sent: handshake, data, FIN, ACK, FIN, ACK.
    assert_eq!(
        flags,
        [
            "true SYN",
            "false SYN ACK",
            "true ACK",
            "true PSH ACK",
            "false ACK",
            "true FIN ACK",
            "false FIN ACK",
            "true ACK"
        ],
        "{segments:#?}"
    );
    assert_eq!(segments[3].len, 5);
    assert!(segments.iter().all(|s| s.src.ip() == server_addr.ip()));
}

fn captures_ipv4() {
    capture_on("127.0.0.1:0");
}

fn captures_ipv6() {
    capture_on("[::1]:0");
}

fn wait_until_times_out_with_a_message() {
    let err = tcpclose::wait::until("nothing", std::time::Duration::from_millis(20), || Ok(None::<()>)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(err.to_string().contains("waiting for nothing"), "{err}");
}

/// The two ways to read a socket's row give the same answer, in every
/// state a close passes through, and both say "gone" at the end.
fn sock_diag_and_proc_agree() {
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let (mut client, server) = pair_on(addr);
        let client_end = End::of(&client).unwrap();
        let server_end = client_end.peer();
        let agree = |end: End| assert_eq!(end.view().unwrap(), end.view_in_proc().unwrap(), "{end}");
        client.write_all(&[1; 10]).unwrap();
        tcpclose::wait::until("10 bytes queued", tcpclose::wait::DEFAULT_DEADLINE, || {
            Ok(server_end.view()?.filter(|v| v.recv_queue == 10))
        })
        .unwrap();
        agree(client_end);
        agree(server_end);
        drop(client);
        server_end.wait_for(State::CloseWait).unwrap();
        client_end.wait_for(State::FinWait2).unwrap();
        agree(client_end);
        agree(server_end);
        let mut server = server;
        server.read_to_end(&mut Vec::new()).unwrap();
        drop(server);
        client_end.wait_for(State::TimeWait).unwrap();
        agree(client_end);
        let (kind, left) = client_end.timer().unwrap().expect("a TIME_WAIT timer");
        let (proc_kind, proc_left) = client_end.timer_in_proc().unwrap().expect("a TIME_WAIT timer in /proc");
        assert_eq!((kind, proc_kind), (TimerKind::TimeWait, TimerKind::TimeWait));
        assert!(
            left.abs_diff(proc_left) < std::time::Duration::from_secs(1),
            "{left:?} {proc_left:?}"
        );
        assert!(left > std::time::Duration::from_secs(50), "{left:?}");
        server_end.wait_gone().unwrap();
        agree(server_end);
    }
}

/// A connection's end that is gone reads as gone, although a listener
/// still holds its local port (the kernel's lookup would return that).
fn a_gone_end_is_gone_while_its_listener_lives() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let server_end = End::of(&server).unwrap();
    socket2::SockRef::from(&server)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(server); // an RST: both ends leave the table at once
    drop(client);
    assert_eq!(server_end.view().unwrap(), None);
    assert_eq!(server_end.view_in_proc().unwrap(), None);
    drop(listener);
}
