//! Counts DynamoDB round trips by recording each attempt's operation (`x-amz-target`), and
//! records which IAM actions each function performs.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

#[derive(Debug, Clone, Default)]
pub struct CallLog {
    ops: Arc<Mutex<Vec<String>>>,
}

impl CallLog {
    pub fn clear(&self) {
        self.ops.lock().unwrap().clear();
    }

    /// Operations sent since the last clear, e.g. `["GetItem", "UpdateItem"]`.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.ops.lock().unwrap())
    }
}

/// Operations that read the table (as opposed to rate-window and bookkeeping writes).
pub const READS: &[&str] = &["GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"];

pub fn reads(ops: &[String]) -> usize {
    ops.iter().filter(|o| READS.contains(&o.as_str())).count()
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or("unknown");
        self.ops.lock().unwrap().push(target.rsplit('.').next().unwrap_or(target).to_owned());
        if let Some(function) = hatched::handler::current_function() {
            for action in iam_actions(target, request.body().bytes()) {
                ActionLog::record(function, action);
            }
        }
        Ok(())
    }
}

/// The IAM actions each function performs (every [`CallLog`] records them, attributed through
/// [`hatched::handler::current_function`]): the evidence for the IAM check (`tests/tests/iam.rs`,
/// run by `scripts/test` after the suite). With `HATCHED_AWS_ACTIONS` set, each new
/// (function, action) pair is appended to that file as `function action`.
pub struct ActionLog;

pub const ACTIONS_FILE_ENV: &str = "HATCHED_AWS_ACTIONS";

static SEEN: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

impl ActionLog {
    fn record(function: &str, action: String) {
        let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.insert((function.to_owned(), action.clone())) {
            return;
        }
        if let Ok(path) = std::env::var(ACTIONS_FILE_ENV) {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("actions file");
            writeln!(file, "{function} {action}").expect("write actions file");
        }
    }
}

/// The IAM actions one request performs: a transaction is authorized per item
/// (`dynamodb:PutItem`, `UpdateItem`, `ConditionCheckItem`, `DeleteItem`), not as a whole.
pub fn iam_actions(target: &str, body: Option<&[u8]>) -> Vec<String> {
    let (service, op) = target.split_once('.').unwrap_or(("unknown", target));
    let service = if service.starts_with("DynamoDB") { "dynamodb" } else { service };
    let per_item = |list: &str| -> Vec<String> {
        let json: serde_json::Value = body.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
        let items = json[list].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .filter_map(|item| item.as_object()?.keys().next().cloned())
            .map(|kind| match kind.as_str() {
                "ConditionCheck" => "dynamodb:ConditionCheckItem".to_owned(),
                "Get" => "dynamodb:GetItem".to_owned(),
                other => format!("dynamodb:{other}Item"),
            })
            .collect()
    };
    match (service, op) {
        ("dynamodb", "TransactWriteItems") => per_item("TransactItems"),
        ("dynamodb", "TransactGetItems") => per_item("TransactItems"),
        _ => vec![format!("{service}:{op}")],
    }
}

#[cfg(test)]
mod tests {
    use super::iam_actions;

    #[test]
    fn transactions_are_authorized_per_item() {
        let body = br#"{"TransactItems":[{"Update":{}},{"Put":{}},{"ConditionCheck":{}},{"Delete":{}}]}"#;
        assert_eq!(
            iam_actions("DynamoDB_20120810.TransactWriteItems", Some(body)),
            ["dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem"]
        );
        assert_eq!(iam_actions("DynamoDB_20120810.BatchGetItem", None), ["dynamodb:BatchGetItem"]);
        assert_eq!(iam_actions("secretsmanager.GetSecretValue", None), ["secretsmanager:GetSecretValue"]);
    }
}
