//! `transition` Lambda: PATCH /api/orders/{id}, order status changes under the state machine.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::lambda_http::Error> {
    shared::lambda::run_http(&shared::functions::TRANSITION).await
}
