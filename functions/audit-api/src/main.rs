//! `audit-api` Lambda: GET /api/audit, one entity's audit history (admins).

#[tokio::main]
async fn main() -> Result<(), shared::lambda::lambda_http::Error> {
    shared::lambda::run_http(&shared::functions::AUDIT_API).await
}
