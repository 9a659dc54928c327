//! tcpclose: the lab (lab.rs). Linux only: it enters namespaces, reads
//! the kernel's socket table and captures packets; elsewhere it says so.

#[cfg(target_os = "linux")]
mod lab;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    lab::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    tcpclose::cli::needs_linux("tcpclose")
}
