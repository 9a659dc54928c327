//! Errors of the "Reading the errors" page that no scenario produces.

use std::io::{ErrorKind, Read};
use std::process::Command;

use tcpclose::observe::End;

// ANCHOR: connection_aborted
/// `ss -K` asks the kernel to destroy a socket (root, and a kernel built
/// with CONFIG_INET_DIAG_DESTROY). Its owner then gets ConnectionAborted
/// (ECONNABORTED, os error 103), and the peer, which receives an RST,
/// ConnectionReset.
#[test]
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
