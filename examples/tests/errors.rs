//! Errors of the "Reading the errors" page that no scenario produces. Runs
//! in the lab's sandbox, where `ss -K` may destroy the test's own sockets
//! without root.

use std::io::{ErrorKind, Read};
use std::process::Command;

use libtest_mimic::{Arguments, Trial};
use tcpclose::observe::End;

fn main() {
    tcpclose::sandbox::enter();
    let args = Arguments::from_args();
    let trials = vec![Trial::test("a_socket_killed_by_ss_reports_connection_aborted", || {
        a_socket_killed_by_ss_reports_connection_aborted();
        Ok(())
    })];
    libtest_mimic::run(&args, trials).exit();
}

// ANCHOR: connection_aborted
/// `ss -K` asks the kernel to destroy a socket (CAP_NET_ADMIN, and a
/// kernel built with CONFIG_INET_DIAG_DESTROY). Its owner then gets
/// ConnectionAborted (ECONNABORTED, os error 103), and the peer, which
/// receives an RST, ConnectionReset.
fn a_socket_killed_by_ss_reports_connection_aborted() {
    let (mut client, mut server) = tcpclose::pair().unwrap();
    let port = server.local_addr().unwrap().port();
    let client_end = End::of(&client).unwrap();
    let killed = Command::new("ss")
        .args(["-K", "-tn", "state", "established", &format!("( sport = :{port} )")])
        .output()
        .expect("ss (iproute2) is installed");
    assert!(
        killed.status.success(),
        "ss -K failed: {}",
        String::from_utf8_lossy(&killed.stderr)
    );
    client_end.wait_gone().unwrap();

    let err = server.read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
    assert_eq!(err.raw_os_error(), Some(103));
    let err = client.read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}
// ANCHOR_END: connection_aborted
