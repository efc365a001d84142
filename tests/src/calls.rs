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
    /// Every write with its full target and request body: what the no-change checks read.
    writes: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl CallLog {
    pub fn clear(&self) {
        self.ops.lock().unwrap().clear();
        self.writes.lock().unwrap().clear();
    }

    /// Operations sent since the last clear, e.g. `["GetItem", "UpdateItem"]`.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.ops.lock().unwrap())
    }

    /// Writes sent since the last `take_writes` or clear: `(x-amz-target, request body)`.
    pub fn take_writes(&self) -> Vec<(String, serde_json::Value)> {
        std::mem::take(&mut *self.writes.lock().unwrap())
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
        let op = target.rsplit('.').next().unwrap_or(target);
        if !READS.contains(&op) {
            let body = request.body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
            self.writes.lock().unwrap().push((target.to_owned(), body));
        }
        self.ops.lock().unwrap().push(op.to_owned());
        if let Some(function) = hatched::handler::current_function() {
            for (action, partition) in iam_actions(target, request.body().bytes()) {
                ActionLog::record(function, format!("{action} {partition}"));
            }
        }
        Ok(())
    }
}

/// The IAM actions each function performs (every [`CallLog`] records them, attributed through
/// [`hatched::handler::current_function`]): the evidence for the IAM check (`tests/tests/iam.rs`,
/// run by `scripts/test` after the suite). With `HATCHED_AWS_ACTIONS` set, each new
/// (function, action, partition) is appended to that file as `function action partition`.
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

/// What one request asks IAM for: (action, partition) pairs. A transaction is authorized per
/// item (`dynamodb:PutItem`, `UpdateItem`, `ConditionCheckItem`, `DeleteItem`), not as a
/// whole; the partition is the prefix of the item's `pk` up to its first `#` (what
/// `dynamodb:LeadingKeys` sees), `-` for Secrets Manager; a query of an index adds `@index`.
pub fn iam_actions(target: &str, body: Option<&[u8]>) -> Vec<(String, String)> {
    let (service, op) = target.split_once('.').unwrap_or(("unknown", target));
    if !service.starts_with("DynamoDB") {
        // IAM names EventBridge `events`; its API target is `AWSEvents`.
        let service = if service == "AWSEvents" { "events" } else { service };
        return vec![(format!("{service}:{op}"), "-".to_owned())];
    }
    let json: serde_json::Value = body.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
    let partition = |item: &serde_json::Value| -> String {
        let pk = item["pk"]["S"].as_str().unwrap_or("?");
        pk.find('#').map_or(pk, |i| &pk[..=i]).to_owned()
    };
    let action = |name: &str| format!("dynamodb:{name}");
    match op {
        "TransactWriteItems" | "TransactGetItems" => json["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.as_object()?.iter().next())
            .map(|(kind, item)| {
                let name = match kind.as_str() {
                    "ConditionCheck" => "ConditionCheckItem".to_owned(),
                    other => format!("{other}Item"),
                };
                let key = if item["Item"].is_null() { &item["Key"] } else { &item["Item"] };
                (action(&name), partition(key))
            })
            .collect(),
        "BatchGetItem" => json["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|tables| tables.values())
            .flat_map(|t| t["Keys"].as_array().cloned().unwrap_or_default())
            .map(|key| (action(op), partition(&key)))
            .collect(),
        "Query" => {
            let pk = &json["ExpressionAttributeValues"][":pk"];
            let partition = partition(&serde_json::json!({ "pk": pk }));
            // A query of an index is authorized against the index's ARN, not the table's.
            match json["IndexName"].as_str() {
                Some(index) => vec![(action(op), format!("{partition}@{index}"))],
                None => vec![(action(op), partition)],
            }
        }
        "PutItem" => vec![(action(op), partition(&json["Item"]))],
        _ => vec![(action(op), partition(&json["Key"]))],
    }
}

#[cfg(test)]
mod tests {
    use super::iam_actions;

    #[test]
    fn transactions_are_authorized_per_item_and_partition() {
        let body =
            br#"{"TransactItems":[{"Update":{"Key":{"pk":{"S":"BDY#a#live#b"}}}},{"Put":{"Item":{"pk":{"S":"WS#x"}}}},
            {"ConditionCheck":{"Key":{"pk":{"S":"CUS#a"}}}},{"Delete":{"Key":{"pk":{"S":"KEY#h"}}}}]}"#;
        let pairs: Vec<String> = iam_actions("DynamoDB_20120810.TransactWriteItems", Some(body))
            .into_iter()
            .map(|(a, p)| format!("{a} {p}"))
            .collect();
        assert_eq!(
            pairs,
            [
                "dynamodb:UpdateItem BDY#",
                "dynamodb:PutItem WS#",
                "dynamodb:ConditionCheckItem CUS#",
                "dynamodb:DeleteItem KEY#"
            ]
        );
        let batch = br#"{"RequestItems":{"t":{"Keys":[{"pk":{"S":"CUS#a"}},{"pk":{"S":"BDY#x"}}]}}}"#;
        assert_eq!(iam_actions("DynamoDB_20120810.BatchGetItem", Some(batch)).len(), 2);
        let query = br#"{"ExpressionAttributeValues":{":pk":{"S":"CUS#a"}}}"#;
        assert_eq!(iam_actions("DynamoDB_20120810.Query", Some(query))[0].1, "CUS#");
        let index_query = br#"{"IndexName":"gsi1","ExpressionAttributeValues":{":pk":{"S":"CUS#a"}}}"#;
        assert_eq!(iam_actions("DynamoDB_20120810.Query", Some(index_query))[0].1, "CUS#@gsi1");
        assert_eq!(iam_actions("secretsmanager.GetSecretValue", None)[0].0, "secretsmanager:GetSecretValue");
    }
}
