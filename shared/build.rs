//! Converts the repository's two YAML documents to JSON at build time, so that no YAML
//! parser ships in a Lambda function and a document that does not parse fails the build:
//! `openapi.yaml` (served at `GET /api/openapi.json`) and `template.yaml` (whose IAM
//! policies, timeouts and events the local stack enforces, `iam::policy`).

use std::path::PathBuf;

fn main() {
    // The manifest directory of this run, not of the build that compiled this script
    // (`env!`): with a target folder shared between clones (CARGO_TARGET_DIR), cargo may
    // run a build script compiled for another checkout of the same package.
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let template = manifest_dir.join("../template.yaml");
    println!("cargo:rerun-if-changed={}", template.display());
    let text =
        std::fs::read_to_string(&template).unwrap_or_else(|e| panic!("read {}: {e}", template.display()));
    let json = template_json::to_json_text(&text).unwrap_or_else(|e| panic!("{}: {e}", template.display()));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("template.json");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));

    let spec = manifest_dir.join("../openapi.yaml");
    println!("cargo:rerun-if-changed={}", spec.display());
    let text = std::fs::read_to_string(&spec).unwrap_or_else(|e| panic!("read {}: {e}", spec.display()));
    let value: serde_json::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", spec.display()));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("openapi.json");
    let json = serde_json::to_vec(&value).expect("a parsed spec serialises");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}
