//! Lists the scenarios in `ALL`, in the order of their `mod` lines in
//! src/scenario/mod.rs: the modules whose file declares a `SCENARIO`.
//! The modules stay plain `mod` items, so that tools that follow the
//! module tree (cargo-mutants) reach every scenario's code.

use std::fs;
use std::path::Path;

fn main() {
    let dir = Path::new("src/scenario");
    println!("cargo:rerun-if-changed={}", dir.display());
    let list = fs::read_to_string(dir.join("mod.rs")).expect("src/scenario/mod.rs");
    let modules: Vec<&str> = list
        .lines()
        .filter_map(|line| line.strip_prefix("mod ")?.strip_suffix(';'))
        .filter(|module| {
            let file = fs::read_to_string(dir.join(format!("{module}.rs"))).unwrap_or_default();
            file.contains("pub const SCENARIO: Scenario")
        })
        .collect();
    let entries: Vec<String> = modules.iter().map(|m| format!("{m}::SCENARIO")).collect();
    let code = format!(
        "/// Every scenario, in the book's order.\npub const ALL: &[Scenario] = &[{}];\n",
        entries.join(", ")
    );
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("all_scenarios.rs");
    fs::write(out, code).expect("write all_scenarios.rs");
}
