//! tcpclose-client: the article's client (client.rs). Linux only, as the
//! lab whose printing of results it shares.

#[cfg(target_os = "linux")]
mod client;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    client::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    tcpclose::cli::needs_linux("tcpclose-client")
}
