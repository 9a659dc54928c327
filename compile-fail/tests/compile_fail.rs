//! The compile errors the book shows are recorded here, not typed: each
//! `tests/ui/*.rs` must fail to compile with exactly the `.stderr` beside
//! it. After a compiler upgrade, regenerate with `TRYBUILD=overwrite`.

#[test]
fn use_after_drop_is_e0382() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/use_after_drop.rs");
}
