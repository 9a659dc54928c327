//! The reference HTTPS server and client (`src/bin/reference-https-*.rs`,
//! shown in the book's "A reference server and client") apply the TLS and
//! HTTP rules of the checklist; each test proves one rule on the running
//! programs.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(20);

/// A file of its own for a certificate, in the system's temporary folder.
fn cert_file() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("reference-https-{}-{n}.der", std::process::id()))
}

/// A running reference HTTPS server, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    cert: PathBuf,
}

impl Server {
    fn start(idle_seconds: &str) -> Server {
        let cert = cert_file();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tcpclose-reference-https-server"))
            .args(["127.0.0.1:0".as_ref(), cert.as_os_str(), idle_seconds.as_ref()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpclose-reference-https-server starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("the server's first line");
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the server said {first:?}, not \"listening on ADDR\""));
        std::thread::spawn(move || for _ in stdout.lines().map_while(Result::ok) {});
        Server { child, addr, cert }
    }

    /// A TLS connection to the server, trusting its certificate.
    async fn connect(&self) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let certificate = std::fs::read(&self.cert)?;
        let config = tcpclose::tls::client_trusting(certificate.into())?;
        tcpclose::tls::connect(config, TcpStream::connect(self.addr).await?).await
    }

    /// Sends SIGTERM and waits for the exit status, within `DEADLINE`.
    fn stop(&mut self) -> Option<i32> {
        // SAFETY: kill(2) with a pid this test spawned and has not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        tcpclose::wait::until("the server's exit", DEADLINE, || {
            Ok(self.child.try_wait()?.map(|status| status.code()))
        })
        .expect("the server exits")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.cert);
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tcpclose::runtime::block_on(future).expect("a runtime")
}

#[test]
fn the_https_client_gets_every_answer_and_exits_0() {
    let server = Server::start("30");
    let output = Command::new(env!("CARGO_BIN_EXE_tcpclose-reference-https-client"))
        .args([
            server.addr.to_string().as_ref(),
            server.cert.as_os_str(),
            "/".as_ref(),
            "/".as_ref(),
        ])
        .output()
        .expect("tcpclose-reference-https-client runs");
    assert_eq!(
        (output.status.code(), String::from_utf8_lossy(&output.stdout).as_ref()),
        (Some(0), "hello\nhello\n"),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An idle connection is closed with close_notify: the client reads a
/// clean `Ok(0)`, not rustls' `UnexpectedEof`.
#[test]
fn an_idle_connection_ends_with_close_notify() {
    let server = Server::start("0.5");
    block_on(async {
        let mut tls = server.connect().await.expect("the handshake");
        let started = Instant::now();
        let read = tokio::time::timeout(DEADLINE, tls.read(&mut [0u8; 64]))
            .await
            .expect("within the deadline");
        assert!(matches!(read, Ok(0)), "{read:?} after {:?}", started.elapsed());
    });
}

/// A request followed by the client's close_notify and FIN still gets
/// its response (`half_close(true)`), which ends with the server's
/// close_notify.
#[test]
fn a_request_ended_by_the_client_s_close_gets_its_response() {
    let server = Server::start("30");
    block_on(async {
        let mut tls = server.connect().await.expect("the handshake");
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("the request");
        tls.shutdown().await.expect("close_notify, then the FIN");
        let mut response = String::new();
        let read = tokio::time::timeout(DEADLINE, tls.read_to_string(&mut response))
            .await
            .expect("within the deadline");
        assert!(read.is_ok(), "{read:?}: {response:?}");
        assert!(
            response.starts_with("HTTP/1.1 200 OK") && response.ends_with("hello\n"),
            "{response:?}"
        );
    });
}

/// SIGTERM tells an event stream to end: its client gets the last event
/// and the last chunk, a clean end, and the server exits 0.
#[test]
fn the_stop_ends_streams_and_the_server_exits_0() {
    let mut server = Server::start("30");
    let response = block_on(async {
        let mut tls = server.connect().await.expect("the handshake");
        tls.write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("the request");
        let mut first = [0u8; 1024];
        let n = tls.read(&mut first).await.expect("the head");
        assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200 OK"));
        assert_eq!(server.stop(), Some(0), "the server's exit status");
        let mut rest = String::new();
        let read = tokio::time::timeout(DEADLINE, tls.read_to_string(&mut rest))
            .await
            .expect("within the deadline");
        read.map(|_| rest).map_err(|e| e.kind())
    });
    let last = format!("{}\r\n0\r\n\r\n", tcpclose::http::LAST_EVENT);
    assert!(matches!(&response, Ok(rest) if rest.ends_with(&last)), "{response:?}");
}

/// A pooled connection closed under a `GET` (the server reads the request
/// and closes without an answer, as in the keep-alive race): the client
/// sends it again on a new connection, and gets its answer.
#[test]
fn the_https_client_retries_a_get_whose_connection_was_closed() {
    let configs = tcpclose::tls::Configs::new().expect("a certificate");
    let cert = cert_file();
    std::fs::write(&cert, configs.certificate.as_ref()).expect("the certificate written");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let addr = listener.local_addr().expect("its address");
    let acceptor = tokio_rustls::TlsAcceptor::from(configs.server.clone());
    let server = std::thread::spawn(move || {
        let serve = async move {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n";
            // The first connection: one answer, then the next request read
            // and the connection closed without an answer.
            let mut first = acceptor.accept(listener.accept().await?.0).await?;
            let mut request = [0u8; 1024];
            let _ = first.read(&mut request).await?;
            first.write_all(answer).await?;
            let _ = first.read(&mut request).await?;
            first.shutdown().await?;
            // The second: the retried request, answered.
            let mut second = acceptor.accept(listener.accept().await?.0).await?;
            let _ = second.read(&mut request).await?;
            second.write_all(answer).await?;
            second.shutdown().await?;
            std::io::Result::Ok(())
        };
        block_on(async { tokio::time::timeout(DEADLINE, serve).await })
    });
    let output = Command::new(env!("CARGO_BIN_EXE_tcpclose-reference-https-client"))
        .args([addr.to_string().as_ref(), cert.as_os_str(), "/".as_ref(), "/".as_ref()])
        .output()
        .expect("tcpclose-reference-https-client runs");
    let _ = std::fs::remove_file(&cert);
    assert_eq!(
        (output.status.code(), String::from_utf8_lossy(&output.stdout).as_ref()),
        (Some(0), "hello\nhello\n"),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let served = server.join().expect("the server thread");
    assert!(
        matches!(served, Ok(Ok(()))),
        "the server served two connections: {served:?}"
    );
}

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    for (bin, args) in [
        (
            env!("CARGO_BIN_EXE_tcpclose-reference-https-server"),
            &["127.0.0.1:0", "cert.der", "soon"][..],
        ),
        (
            env!("CARGO_BIN_EXE_tcpclose-reference-https-client"),
            &["127.0.0.1:1", "cert.der"][..],
        ),
        (
            env!("CARGO_BIN_EXE_tcpclose-reference-https-client"),
            &["127.0.0.1:1", "cert.der", "/", "--pause", "-1"][..],
        ),
    ] {
        let output = Command::new(bin).args(args).output().expect("the program runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            (output.status.code(), stderr.lines().count()),
            (Some(2), 1),
            "{bin} {args:?}: {stderr}"
        );
    }
}

#[test]
fn help_and_version_exit_0() {
    for bin in [
        env!("CARGO_BIN_EXE_tcpclose-reference-https-server"),
        env!("CARGO_BIN_EXE_tcpclose-reference-https-client"),
    ] {
        for (flag, expect) in [("--help", "Usage:"), ("--version", env!("CARGO_PKG_VERSION"))] {
            let output = Command::new(bin).arg(flag).output().expect("the program runs");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert_eq!(
                (output.status.code(), stdout.contains(expect)),
                (Some(0), true),
                "{bin} {flag}: {stdout}"
            );
        }
    }
}
