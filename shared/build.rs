//! Converts `openapi.yaml` (the reviewable form of the spec) to the JSON that
//! `GET /api/openapi.json` serves, at build time: no YAML parser ships in a Lambda
//! function, and a spec that does not parse fails the build instead of a request.

use std::path::PathBuf;

fn main() {
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
    println!("cargo:rerun-if-changed={}", spec.display());
    let text = std::fs::read_to_string(&spec).unwrap_or_else(|e| panic!("read {}: {e}", spec.display()));
    let value: serde_json::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", spec.display()));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("openapi.json");
    let json = serde_json::to_vec(&value).expect("a parsed spec serialises");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}
