//! `token SUB [GROUPS]`: prints an HS256 token the local gateway accepts, for trying the
//! API by hand (`make token SUB=alice GROUPS=admin`). Signed with `JWT_SECRET` (default
//! `local-dev-secret`), valid for `TOKEN_TTL_SECONDS` (default 86400).

use jsonwebtoken::{encode, EncodingKey, Header};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(sub) = args.next().filter(|s| !s.is_empty()) else {
        eprintln!("usage: token SUB [GROUP,GROUP...]");
        return ExitCode::FAILURE;
    };
    let groups: Vec<String> =
        args.next().unwrap_or_default().split(',').filter(|g| !g.is_empty()).map(str::to_string).collect();
    let secret = std::env::var("JWT_SECRET").ok().filter(|s| !s.is_empty());
    let secret = secret.as_deref().unwrap_or(gateway::auth::DEFAULT_SECRET);
    let ttl: i64 = std::env::var("TOKEN_TTL_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(86_400);
    let claims =
        serde_json::json!({"sub": sub, "groups": groups, "exp": chrono::Utc::now().timestamp() + ttl});
    match EncodingKey::from_secret(secret.as_bytes())
        .and_then(|key| encode(&Header::default(), &claims, &key))
    {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("token: {e}");
            ExitCode::FAILURE
        }
    }
}
