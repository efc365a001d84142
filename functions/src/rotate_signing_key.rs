//! The signing secret's rotation function: Secrets Manager invokes it once per step
//! (`createSecret`, `setSecret`, `testSecret`, `finishSecret`) with the rotation's
//! `ClientRequestToken`. The steps themselves are `hatched::rotation`, which
//! `hatchctl signing-key rotate` runs too. Not an HTTP endpoint: its `FUNCTION` is listed in
//! `functions::OTHER_FUNCTIONS`.

pub use aws_lambda_events::secretsmanager::SecretsManagerSecretRotationEvent as RotationEvent;
use hatched::App;
use hatched::domain::signing_keys::{Caller, RotationMode};
use hatched::endpoint::Function;
use hatched::handler::serving;
use hatched::rotation::Step;
use hatched::signing::SigningError;

pub const FUNCTION: Function = Function { function: "rotate-signing-key" };

/// Why a step failed: Secrets Manager sees the error and does not go on to the next step.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("unknown rotation step")]
    UnknownStep,
    #[error("the event names another secret than HATCHED_SIGNING_SECRET")]
    OtherSecret,
    #[error(transparent)]
    Signing(#[from] SigningError),
}

/// Runs the event's step as Secrets Manager's: the protocol to the letter (rotation enabled on
/// the secret, the token a version labelled `AWSPENDING` or already current). Only the
/// configured signing secret is rotated (by name or ARN: the event carries the ARN, the
/// environment either).
pub async fn handle(app: &App, event: RotationEvent) -> Result<String, RotationError> {
    serving(FUNCTION.function, async {
        let step = Step::parse(&event.step).ok_or(RotationError::UnknownStep)?;
        let configured = app.rotation.secret_id()?;
        if !same_secret(configured, &event.secret_id) {
            return Err(RotationError::OtherSecret);
        }
        let token = &event.client_request_token;
        Ok(app
            .rotation
            .run_step(&event.secret_id, step, token, RotationMode::Scheduled, Caller::SecretsManager)
            .await?)
    })
    .await
}

/// `name`, or an ARN ending in `:secret:name-XXXXXX` (Secrets Manager's six-character suffix).
fn same_secret(configured: &str, given: &str) -> bool {
    let name = |id: &str| -> String {
        match id.split_once(":secret:") {
            Some((_, rest)) => match rest.rsplit_once('-') {
                Some((name, suffix)) if suffix.len() == 6 => name.to_owned(),
                _ => rest.to_owned(),
            },
            None => id.to_owned(),
        }
    };
    configured == given || name(configured) == name(given)
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_match_by_name_or_arn() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hatched-signing-AbCdEf";
        assert!(same_secret(arn, arn));
        assert!(same_secret("hatched-signing", arn));
        assert!(!same_secret("other", arn));
        assert!(!same_secret("hatched-signing", "hatched-signing-2"));
    }
}
