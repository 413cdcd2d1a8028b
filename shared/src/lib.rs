//! stockhold's shared library: everything every Lambda function and the local gateway
//! run. Functions only wire it together; no business rule lives anywhere else.
//!
//! Layers, each using only those below it: `domain` (entities, rules, time, the caller;
//! no I/O), `store` (DynamoDB: executor, records, repositories), `service` (the business
//! operations and their ports), `adapters` (the ports' AWS and local implementations),
//! `config` (the environment, the clients), `http` (routes, handlers, problem+json),
//! `jobs` (the event-invoked functions' work), `functions` (the one table of the ten
//! functions and what each needs) and at the top `lambda` (the entry points). `deadline`
//! and `iam` (local IAM enforcement) sit at the bottom. A test reads every file's
//! `crate::` imports and refuses a circle or an import of a higher layer.

pub mod adapters;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod functions;
pub mod http;
#[cfg(feature = "local")]
pub mod iam;
pub mod jobs;
pub mod lambda;
pub mod service;
pub mod store;

/// The layering above, held: every file's `crate::` paths name only its own layer or
/// lower ones, so the modules import each other in one direction and no circle forms.
#[cfg(test)]
mod layers {
    /// Lowest first.
    const LAYERS: &[&str] = &[
        "domain",
        "deadline",
        "iam",
        "store",
        "service",
        "adapters",
        "config",
        "http",
        "jobs",
        "functions",
        "lambda",
    ];

    fn rank(module: &str) -> Option<usize> {
        LAYERS.iter().position(|l| *l == module)
    }

    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn no_module_imports_a_higher_layer_so_there_is_no_circle() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut all = Vec::new();
        files(&src, &mut all);
        assert!(all.len() > 20, "read {} files of {}", all.len(), src.display());
        let mut wrong = Vec::new();
        for path in all {
            let Ok(rel) = path.strip_prefix(&src) else { continue };
            let own = rel.iter().next().and_then(|c| c.to_str()).unwrap_or("").trim_end_matches(".rs");
            if own == "lib" {
                continue;
            }
            let Some(own_rank) = rank(own) else {
                wrong.push(format!("{own}: a module the layers do not place"));
                continue;
            };
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let code = text.lines().enumerate().filter(|(_, l)| !l.trim_start().starts_with("//"));
            for (n, line) in code {
                for used in line.split("crate::").skip(1) {
                    let name: String =
                        used.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if rank(&name).is_some_and(|r| r > own_rank) {
                        wrong.push(format!("{}:{}: {own} uses {name}", rel.display(), n + 1));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "imports of a higher layer:\n{}", wrong.join("\n"));
    }
}
