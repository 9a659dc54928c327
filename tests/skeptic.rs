//! Every Rust block of the book (src/**/*.md), compiled and run as a test;
//! build.rs generates them with skeptic.
include!(concat!(env!("OUT_DIR"), "/skeptic-tests.rs"));
