//! `iam-coverage`: the last step of `make test`. Adds up the grants every process of the
//! run recorded as used (`IAM_USAGE_DIR`, see `shared::iam::usage`), writes
//! `target/iam-usage.json`, and fails when `template.yaml` grants a function or role an
//! (action, resource) that no test exercised and `infra/iam-allowlist.txt` does not
//! explain, or when an allowlist line names a grant that is gone or now exercised.
//!
//!   iam-coverage USAGE_DIR OUT_JSON ALLOWLIST

use shared::iam::policy::{Grant, LocalNames, Template, EMBEDDED_TEMPLATE};
use std::collections::BTreeSet;
use std::process::ExitCode;

/// One allowlist line: `Principal action resource  # why` (the reason is required).
fn parse_allowlist(text: &str) -> Result<Vec<(Grant, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (grant, why) = line.split_once('#').ok_or(format!("line {}: no `# reason`", n + 1))?;
        let why = why.trim();
        let parts: Vec<&str> = grant.split_whitespace().collect();
        match (parts.as_slice(), why.is_empty()) {
            ([p, a, r], false) => out.push((
                Grant { principal: p.to_string(), action: a.to_string(), resource: r.to_string() },
                why.to_string(),
            )),
            _ => return Err(format!("line {}: want `Principal action resource  # reason`", n + 1)),
        }
    }
    Ok(out)
}

/// (unexercised and not allowlisted, allowlist lines that are stale)
fn check(
    granted: &BTreeSet<Grant>,
    used: &BTreeSet<Grant>,
    allow: &[(Grant, String)],
) -> (Vec<Grant>, Vec<String>) {
    let allowed: BTreeSet<&Grant> = allow.iter().map(|(g, _)| g).collect();
    let missing = granted.iter().filter(|g| !used.contains(*g) && !allowed.contains(g)).cloned().collect();
    let stale = allow
        .iter()
        .filter_map(|(g, _)| {
            if !granted.contains(g) {
                Some(format!("{} {} {}: not granted by the template", g.principal, g.action, g.resource))
            } else if used.contains(g) {
                Some(format!("{} {} {}: exercised now, the line can go", g.principal, g.action, g.resource))
            } else {
                None
            }
        })
        .collect();
    (missing, stale)
}

fn run() -> Result<bool, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, out, allowlist] = args.as_slice() else {
        return Err("usage: iam-coverage USAGE_DIR OUT_JSON ALLOWLIST".into());
    };
    let template = Template::parse(EMBEDDED_TEMPLATE, &LocalNames::default()).map_err(|e| e.to_string())?;
    let granted: BTreeSet<Grant> = template
        .functions
        .iter()
        .map(|f| &f.policy)
        .chain(template.roles.iter().map(|r| &r.policy))
        .flat_map(|p| p.grants())
        .collect();
    let used: BTreeSet<Grant> = shared::iam::usage::read_dir(std::path::Path::new(dir))
        .map_err(|e| format!("{dir}: {e} (was IAM_USAGE_DIR set for the test run?)"))?
        .into_iter()
        .collect();
    let allow =
        parse_allowlist(&std::fs::read_to_string(allowlist).map_err(|e| format!("{allowlist}: {e}"))?)?;
    let (missing, stale) = check(&granted, &used, &allow);
    let report = serde_json::json!({
        "used": used,
        "granted": granted,
        "allowlisted": allow.iter().map(|(g, why)| serde_json::json!({"grant": g, "why": why})).collect::<Vec<_>>(),
        "unexercised": missing,
    });
    std::fs::write(out, serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{out}: {e}"))?;
    eprintln!(
        "iam-coverage: {} grants, {} exercised, {} allowlisted; report in {out}",
        granted.len(),
        used.len(),
        allow.len()
    );
    for g in &missing {
        eprintln!("iam-coverage: {} is granted {} on {} but no test exercised it (exercise it, remove it from template.yaml, or say why in {allowlist})", g.principal, g.action, g.resource);
    }
    for s in &stale {
        eprintln!("iam-coverage: stale allowlist line: {s}");
    }
    Ok(missing.is_empty() && stale.is_empty())
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("iam-coverage: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str, a: &str, r: &str) -> Grant {
        Grant { principal: p.into(), action: a.into(), resource: r.into() }
    }

    #[test]
    fn an_unexercised_grant_fails_unless_a_line_says_why_and_stale_lines_fail_too() {
        let granted: BTreeSet<Grant> =
            [g("F", "dynamodb:GetItem", "Table.Arn"), g("F", "dynamodb:Query", "Table.Arn")].into();
        let used: BTreeSet<Grant> = [g("F", "dynamodb:GetItem", "Table.Arn")].into();
        let (missing, stale) = check(&granted, &used, &[]);
        assert_eq!((missing, stale.len()), (vec![g("F", "dynamodb:Query", "Table.Arn")], 0));
        let allow = parse_allowlist("# comment\nF dynamodb:Query Table.Arn  # needed by X\n").expect("parse");
        assert_eq!(check(&granted, &used, &allow), (vec![], vec![]));
        let allow = parse_allowlist("F dynamodb:GetItem Table.Arn # old\n").expect("parse");
        assert_eq!(check(&granted, &used, &allow).1.len(), 1, "exercised now");
        assert!(parse_allowlist("F dynamodb:Query Table.Arn\n").is_err(), "a reason is required");
    }
}
