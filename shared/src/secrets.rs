//! The only code that speaks Secrets Manager: reading a version, creating a secret, and the
//! calls of the rotation protocol. The signing key set (`crate::signing`), the data key
//! (`crate::sealing`) and the rotation steps (`crate::rotation`) go through it.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;

use crate::aws::{AwsFailure, classify};

use crate::domain::signing_keys::Stages;
/// Secrets Manager's staging labels.
pub use crate::domain::signing_keys::{AWSCURRENT, AWSPENDING, AWSPREVIOUS};

/// What `DescribeSecret` says of a secret's rotation.
#[derive(Debug, Clone)]
pub struct Described {
    /// `RotationEnabled`: absent counts as `false` (moto omits it on a secret never rotated).
    pub rotation_enabled: bool,
    pub stages: Stages,
}

/// Which version of a secret to read.
#[derive(Debug, Clone, Copy)]
pub enum Version<'a> {
    Stage(&'a str),
    /// A version id, which must also carry this label.
    Id(&'a str, &'a str),
}

/// A Secrets Manager client (cheap to clone: the SDK client is shared).
#[derive(Debug, Clone)]
pub struct Secrets {
    client: Client,
}

impl Secrets {
    pub fn new(client: Client) -> Secrets {
        Secrets { client }
    }

    /// The value of a version, or `None` if there is none (or it has no value yet).
    pub async fn get(&self, id: &str, version: Version<'_>) -> Result<Option<String>, AwsFailure> {
        let request = self.client.get_secret_value().secret_id(id);
        let request = match version {
            Version::Stage(stage) => request.version_stage(stage),
            Version::Id(vid, stage) => request.version_id(vid).version_stage(stage),
        };
        match request.send().await {
            Ok(out) => Ok(out.secret_string),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(classify("secretsmanager:GetSecretValue", e)),
        }
    }

    /// Creates the secret with this value; `false` if it exists already.
    pub async fn create(&self, id: &str, value: &str) -> Result<bool, AwsFailure> {
        match self.client.create_secret().name(id).secret_string(value).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_exists_exception()) => Ok(false),
            Err(e) => Err(classify("secretsmanager:CreateSecret", e)),
        }
    }

    /// Every version and its staging labels.
    pub async fn stages(&self, id: &str) -> Result<HashMap<String, Vec<String>>, AwsFailure> {
        Ok(self.describe(id).await?.stages)
    }

    /// Whether rotation is enabled, and every version with its staging labels (one
    /// `DescribeSecret`, what each rotation step starts with).
    pub async fn describe(&self, id: &str) -> Result<Described, AwsFailure> {
        let out = self
            .client
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| classify("secretsmanager:DescribeSecret", e))?;
        Ok(Described {
            rotation_enabled: out.rotation_enabled.unwrap_or(false),
            stages: out.version_ids_to_stages.unwrap_or_default(),
        })
    }

    /// Each version labelled `stage` with when it was created (`ListSecretVersionIds`: the
    /// labels alone carry no date). Few versions are kept: the first page holds them.
    pub async fn created_with_stage(&self, id: &str, stage: &str) -> Result<Vec<(String, i64)>, AwsFailure> {
        let out = self
            .client
            .list_secret_version_ids()
            .secret_id(id)
            .max_results(100)
            .send()
            .await
            .map_err(|e| classify("secretsmanager:ListSecretVersionIds", e))?;
        Ok(out
            .versions
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.version_stages().iter().any(|s| s == stage))
            .filter_map(|v| Some((v.version_id?, v.created_date?.secs())))
            .collect())
    }

    /// Puts `value` as version `token`, staged `AWSPENDING` only.
    pub async fn put_pending(&self, id: &str, token: &str, value: &str) -> Result<(), AwsFailure> {
        self.client
            .put_secret_value()
            .secret_id(id)
            .client_request_token(token)
            .secret_string(value)
            .version_stages(AWSPENDING)
            .send()
            .await
            .map_err(|e| classify("secretsmanager:PutSecretValue", e))?;
        Ok(())
    }

    /// Moves `stage` to version `to` (from `from`, where it is now), or only removes it from
    /// `from` when `to` is `None`.
    pub async fn move_stage(
        &self,
        id: &str,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), AwsFailure> {
        self.client
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage(stage)
            .set_move_to_version_id(to.map(str::to_owned))
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await
            .map_err(|e| classify("secretsmanager:UpdateSecretVersionStage", e))?;
        Ok(())
    }
}
