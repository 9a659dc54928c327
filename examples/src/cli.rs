//! What the lab's programs share on the command line.

use std::io::{self, Write};
use std::time::Duration;

use clap::Parser;

/// Where the book is published: what every message of the lab that points
/// at a chapter links to (book.toml's `site-url` on GitHub Pages).
pub const BOOK_URL: &str = "https://tcpclose.github.io/tcpclose/";

/// The published address of a chapter, given by its source's name
/// (`eof-close-wait.md`, with an optional `#fragment`).
pub fn chapter_url(page: &str) -> String {
    format!("{BOOK_URL}{}", page.replacen(".md", ".html", 1))
}

/// What a Linux-only program does elsewhere: says in one line what it
/// needs and where the book covers the other systems, and exits with 3
/// (could not run here).
pub fn needs_linux(program: &str) -> std::process::ExitCode {
    eprintln!(
        "{program}: needs Linux (network namespaces, sock_diag, packet capture); \
         on this system, see {}",
        chapter_url("other-systems.md")
    );
    std::process::ExitCode::from(3)
}

/// Parses the command line. Bad usage prints one line and exits with 2;
/// `--help` and `--version` print and exit with 0.
pub fn parse<T: Parser>() -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(e) if e.use_stderr() => {
            let name = std::env::args().next().unwrap_or_default();
            let name = name.rsplit('/').next().unwrap_or("tcpclose");
            // clap's message is a paragraph; its first lines up to the blank
            // one say what is wrong.
            let text = e.to_string();
            let what: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let what = what.join(" ");
            eprintln!("{name}: {} (see {name} --help)", what.trim_start_matches("error: "));
            std::process::exit(2);
        }
        Err(e) => {
            // `--help | head` closes the pipe early: EPIPE is no reason to panic.
            let _ = write!(io::stdout(), "{e}");
            std::process::exit(0);
        }
    }
}

/// Parses `--hold SECS`: seconds from 0 to one day, fractions allowed.
pub fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{secs} is not between 0 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// [`seconds`], more than zero (a timeout of zero means none to the kernel).
pub fn positive_seconds(text: &str) -> Result<Duration, String> {
    let secs = seconds(text)?;
    if secs.is_zero() {
        return Err("0 seconds is no timeout; give more than 0".into());
    }
    Ok(secs)
}

/// Prints one line to stdout at once (a person or a script is watching).
/// A closed stdout must not kill a program: write errors are ignored.
pub fn say(line: String) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}

/// Writes to standard output. A reader that went away (`tcpclose list |
/// head`) ends the program quietly, as SIGPIPE would a C program, instead
/// of the panic of `println!`: Rust ignores SIGPIPE, so the write fails
/// with `BrokenPipe`.
pub fn out(text: std::fmt::Arguments) {
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("cannot write to standard output: {e}");
        }
        std::process::exit(if e.kind() == io::ErrorKind::BrokenPipe { 0 } else { 2 });
    }
}

/// `println!` through [`out`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lab links the book where book.toml publishes it: its
    /// `site-url` on the GitHub Pages of its repository's owner.
    #[test]
    fn the_lab_links_the_book_where_book_toml_publishes_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let config = std::fs::read_to_string(root.join("book.toml")).unwrap();
        let value = |key: &str| {
            config
                .lines()
                .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_string())
                .unwrap()
        };
        let repository = value("git-repository-url");
        let (owner, _) = repository
            .strip_prefix("https://github.com/")
            .and_then(|r| r.split_once('/'))
            .unwrap();
        assert_eq!(BOOK_URL, format!("https://{owner}.github.io{}", value("site-url")));
        assert_eq!(
            chapter_url("time-wait.md#binding-again"),
            format!("{BOOK_URL}time-wait.html#binding-again")
        );
    }
}
