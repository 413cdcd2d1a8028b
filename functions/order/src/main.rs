//! `order` Lambda: POST /api/orders (convert reservations into an order) and GET /api/orders/{id}.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::lambda_http::Error> {
    shared::lambda::run_http(&shared::functions::ORDER).await
}
