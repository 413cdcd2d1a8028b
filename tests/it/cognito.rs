//! `make user` and `make aws-token` (infra/scripts/cognito.py) against moto's cognito-idp:
//! a user created in a pool set up as the template sets it up, down to an ID token whose
//! issuer, audience and groups the authorizer the template configures would accept.

use serde_json::{json, Value};
use std::process::Command;

fn python(script: &[&str], env: &[(&str, &str)]) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let endpoint =
        std::env::var("SCHEDULER_ENDPOINT").expect("SCHEDULER_ENDPOINT (moto_server; run make test)");
    let out = Command::new(format!("{root}/.venv/bin/python"))
        .current_dir(root)
        .args(script)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .envs(env.iter().copied())
        .output()
        .expect("python from .venv (make test installs it)");
    assert!(out.status.success(), "{script:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The pool, app client and admin group as template.yaml makes them.
fn pool_as_the_template_makes_it() -> (String, String) {
    let setup = r#"
import boto3, json
idp = boto3.client("cognito-idp")
pool = idp.create_user_pool(PoolName="stockhold", UsernameAttributes=["email"], AutoVerifiedAttributes=["email"],
    Policies={"PasswordPolicy": {"MinimumLength": 12}})["UserPool"]["Id"]
client = idp.create_user_pool_client(UserPoolId=pool, ClientName="app", GenerateSecret=False,
    ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
idp.create_group(UserPoolId=pool, GroupName="admin")
print(json.dumps([pool, client]))
"#;
    let ids: Vec<String> = serde_json::from_str(&python(&["-c", setup], &[])).expect("ids");
    (ids[0].clone(), ids[1].clone())
}

fn payload(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64"))
        .expect("json")
}

#[test]
fn a_user_made_with_make_user_gets_a_token_the_stacks_authorizer_accepts_as_admin() {
    let (pool, client) = pool_as_the_template_makes_it();
    let env = [("USER_POOL_ID", pool.as_str()), ("USER_POOL_CLIENT_ID", client.as_str())];
    let email = format!("{}@example.com", stockhold_tests::unique("admin"));
    let made: Value =
        serde_json::from_str(&python(&["infra/scripts/cognito.py", "user", &email, "--admin"], &env))
            .expect("json");
    assert_eq!((made["email"].as_str(), made["admin"].as_bool()), (Some(email.as_str()), Some(true)));
    let password = made["password"].as_str().expect("password");
    assert!(password.len() >= 12, "the pool's policy");
    let mut env = env.to_vec();
    env.push(("PASSWORD", password));
    let token = python(&["infra/scripts/cognito.py", "token", &email], &env);
    let claims = payload(&token);

    // What the template's JwtConfiguration names for a stack-made pool.
    let issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{pool}");
    assert_eq!(
        (claims["iss"].as_str(), claims["aud"].as_str()),
        (Some(issuer.as_str()), Some(client.as_str()))
    );
    let verifier =
        gateway::auth::Verifier::new("unused").expect("verifier").with_issuer(Some(issuer), vec![client]);
    let map = claims.as_object().expect("claims");
    assert!(verifier.names_us(map), "the authorizer's issuer and audience: {claims}");
    // As API Gateway hands the claims to the function: an admin.
    let flattened: shared::http::identity::Claims =
        map.iter().map(|(k, v)| (k.clone(), shared::http::identity::flatten_claim(v))).collect();
    let caller = shared::http::identity::caller_from_claims(&flattened, Some(&token)).expect("a caller");
    assert!(caller.is_admin, "{claims}");
    assert_eq!(json!(caller.user_id), claims["sub"]);
    // Another pool's token is not this stack's.
    let other = gateway::auth::Verifier::new("unused")
        .expect("verifier")
        .with_issuer(Some("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other".into()), vec![]);
    assert!(!other.names_us(map));
}
