//! `products` Lambda: the four product routes (list, create, get, adjust stock).

#[tokio::main]
async fn main() -> Result<(), shared::lambda::lambda_http::Error> {
    shared::lambda::run_http(&shared::functions::PRODUCTS).await
}
