//! The states the scenarios pass through too fast to see: the opening
//! states (LISTEN, SYN_SENT, SYN_RECV) and LAST_ACK, each held still by a
//! socket filter that discards what would end it. Runs in the lab's
//! sandbox: no root needed.

use std::io::{ErrorKind, Read};
use std::net::{Shutdown, SocketAddr, TcpListener};

use libtest_mimic::{Arguments, Trial};
use socket2::{Domain, Socket, Type};
use tcpclose::observe::{End, State};
use tcpclose::sockopt::discard_everything;
use tcpclose::{netns, sandbox};

fn main() {
    sandbox::enter();
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test("opening_states_listen_syn_sent_syn_recv", || {
            Ok(netns::isolated(opening_states_listen_syn_sent_syn_recv)?)
        }),
        Trial::test("last_ack_waits_for_the_ack_of_its_fin", || {
            Ok(netns::isolated(last_ack_waits_for_the_ack_of_its_fin)?)
        }),
    ];
    libtest_mimic::run(&args, trials).exit();
}

/// A client socket connecting, without blocking, to `to`.
fn connecting(to: SocketAddr, deaf: bool) -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    if deaf {
        discard_everything(&socket).unwrap();
    }
    socket.set_nonblocking(true).unwrap();
    let err = socket.connect(&to.into()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINPROGRESS));
    socket
}

fn end_of(socket: &Socket, remote: SocketAddr) -> End {
    End {
        local: socket.local_addr().unwrap().as_socket().unwrap(),
        remote,
    }
}

fn opening_states_listen_syn_sent_syn_recv() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let unspecified: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let listening = End {
        local: addr,
        remote: unspecified,
    };
    assert_eq!(listening.state().unwrap(), Some(State::Listen));

    // The listener discards the SYN: the client waits for a SYN ACK.
    discard_everything(&listener).unwrap();
    let unanswered = connecting(addr, false);
    end_of(&unanswered, addr).wait_for(State::SynSent).unwrap();
    drop(unanswered);
    tcpclose::sockopt::hear_again(&listener).unwrap();

    // The client discards the SYN ACK: the server waits for the last ACK
    // of the handshake, the client still for the SYN ACK.
    let deaf = connecting(addr, true);
    let client = end_of(&deaf, addr);
    client.peer().wait_for(State::SynRecv).unwrap();
    assert_eq!(client.state().unwrap(), Some(State::SynSent));
    listener.set_nonblocking(true).unwrap();
    let nothing_to_accept = listener.accept().unwrap_err();
    assert_eq!(nothing_to_accept.kind(), ErrorKind::WouldBlock);
}

fn last_ack_waits_for_the_ack_of_its_fin() {
    let (client, mut server) = tcpclose::pair().unwrap();
    let server_end = End::of(&server).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.read(&mut [0; 8]).unwrap(), 0);
    server_end.wait_for(State::CloseWait).unwrap();
    // The ACK of the client's FIN must land before the client goes deaf.
    server_end.peer().wait_for(State::FinWait2).unwrap();

    // The client stops hearing: the server's FIN is never acknowledged.
    discard_everything(&client).unwrap();
    drop(server); // the server closes after the peer did, from CLOSE_WAIT
    server_end.wait_for(State::LastAck).unwrap();
    assert_eq!(server_end.peer().state().unwrap(), Some(State::FinWait2));
}
