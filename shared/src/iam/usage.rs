//! Which grants a run exercised: each process appends every grant it sees used for the
//! first time to `<IAM_USAGE_DIR>/<pid>.jsonl`, one JSON object per line, so that the
//! test processes, the gateway and the function binaries of one `make test` can be added
//! up afterwards (`iam-coverage`) into `target/iam-usage.json`.

use super::policy::Grant;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Debug)]
pub struct UsageLog {
    path: PathBuf,
    seen: Mutex<HashSet<Grant>>,
}

impl UsageLog {
    pub fn new(dir: PathBuf) -> Self {
        let path = dir.join(format!("{}.jsonl", std::process::id()));
        Self { path, seen: Mutex::new(HashSet::new()) }
    }

    /// Records `grant` as used. Failing to write is logged, never fails the call.
    pub fn record(&self, grant: &Grant) {
        let Ok(mut seen) = self.seen.lock() else { return };
        if !seen.insert(grant.clone()) {
            return;
        }
        let written = (|| -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
            let line = serde_json::to_string(grant).map_err(std::io::Error::other)?;
            writeln!(f, "{line}")
        })();
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot record IAM usage");
        }
    }
}

/// Reads every grant recorded under `dir`.
pub fn read_dir(dir: &std::path::Path) -> std::io::Result<HashSet<Grant>> {
    let mut out = HashSet::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines().filter(|l| !l.trim().is_empty()) {
            if let Ok(g) = serde_json::from_str::<Grant>(line) {
                out.insert(g);
            }
        }
    }
    Ok(out)
}
