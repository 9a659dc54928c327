//! Turns every Rust block of the book (src/**/*.md) into a test: skeptic
//! writes them to $OUT_DIR/skeptic-tests.rs, which tests/skeptic.rs includes.

fn main() {
    let chapters = skeptic::markdown_files_of_directory("src/");
    skeptic::generate_doc_tests(&chapters);
    // A new chapter must regenerate the tests too, not only an edited one.
    println!("cargo:rerun-if-changed=src");
}
