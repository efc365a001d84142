//! What an AWS SDK error means to us, for every client (DynamoDB, Secrets Manager): a
//! dependency to retry later (503) or a bug (500). The cause is kept for the logs only.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsFailure {
    /// Unreachable, timing out or throttling after the SDK's retries.
    #[error("dependency unavailable during {op}: {cause}")]
    Unavailable { op: &'static str, cause: String },
    #[error("dependency error during {op}: {cause}")]
    Internal { op: &'static str, cause: String },
}

/// Error codes AWS services use for "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
];

pub fn classify<E, R>(op: &'static str, err: SdkError<E, R>) -> AwsFailure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let cause = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            AwsFailure::Unavailable { op, cause }
        }
        SdkError::ServiceError(se) if se.err().code().is_some_and(|c| RETRYABLE_CODES.contains(&c)) => {
            AwsFailure::Unavailable { op, cause }
        }
        _ => AwsFailure::Internal { op, cause },
    }
}
