//! `list` Lambda: GET /api/orders, filtered, sorted and cursor-paged.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::lambda_http::Error> {
    shared::lambda::run_http(&shared::functions::LIST).await
}
