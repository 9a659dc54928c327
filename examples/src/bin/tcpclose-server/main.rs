//! tcpclose-server: the article's server (server.rs). Linux only: it
//! reports what it saw through the kernel's socket table.

#[cfg(target_os = "linux")]
mod server;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    server::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    tcpclose::cli::needs_linux("tcpclose-server")
}
