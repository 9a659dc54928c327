//! The workspace's `rust-version` is true of its locked dependencies: none
//! of them, the test and build dependencies included, declares a newer
//! one. (Clippy's `incompatible_msrv` holds the workspace's own code to it.)

use std::process::Command;

/// A version as numbers: `1.85.0` is `[1, 85, 0]`, `1.88` is `[1, 88]`.
fn numbers(version: &str) -> Vec<u64> {
    version.split('.').map(|n| n.parse().unwrap_or(0)).collect()
}

/// Whether `version` needs a newer Rust than `declared` (`1.88` is
/// `1.88.0`).
fn newer(version: &str, declared: &str) -> bool {
    let (mut a, mut b) = (numbers(version), numbers(declared));
    a.resize(3, 0);
    b.resize(3, 0);
    a > b
}

#[test]
fn no_locked_dependency_needs_a_newer_rust_than_the_workspace_declares() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--offline",
            "--manifest-path",
            manifest,
        ])
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let version_of = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["rust_version"].as_str())
            .map(String::from)
    };
    let declared = version_of("tcpclose").expect("the lab declares a rust-version");
    let too_new: Vec<String> = packages
        .iter()
        .filter_map(|p| Some((p["name"].as_str()?, p["version"].as_str()?, p["rust_version"].as_str()?)))
        .filter(|(_, _, rust)| newer(rust, &declared))
        .map(|(name, version, rust)| format!("{name} {version} needs Rust {rust}"))
        .collect();
    assert!(
        too_new.is_empty(),
        "the workspace declares rust-version {declared}, but: {}; raise it in Cargo.toml",
        too_new.join(", ")
    );
    for member in [
        "tcp-close-book",
        "tcpclose",
        "tcpclose-scenarios",
        "tcpclose-compile-fail",
    ] {
        assert_eq!(
            version_of(member).as_deref(),
            Some(declared.as_str()),
            "{member}'s rust-version"
        );
    }
}

#[test]
fn versions_compare_as_numbers() {
    assert!(newer("1.88", "1.85"));
    assert!(newer("1.100", "1.88"));
    assert!(!newer("1.88.0", "1.88"));
    assert!(!newer("1.85", "1.88"));
}
