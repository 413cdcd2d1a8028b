//! `cargo run -q -p template-json < template.yaml > template.json`: a template's JSON form,
//! as the local IAM reads it from `IAM_TEMPLATE`.

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut yaml = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut yaml) {
        eprintln!("template-json: cannot read stdin: {e}");
        return ExitCode::FAILURE;
    }
    match template_json::to_json_text(&yaml) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("template-json: {e}");
            ExitCode::FAILURE
        }
    }
}
