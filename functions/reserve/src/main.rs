//! `reserve` Lambda: create, read and release reservations.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::lambda_http::Error> {
    shared::lambda::run_http(&shared::functions::RESERVE).await
}
