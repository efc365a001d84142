//! The floor for cold-start comparisons: lambda_http answering "hello", nothing else.
use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_req: Request| async { Ok::<_, Error>(Response::new(Body::Text("hello".into()))) })).await
}
