//! The usage roll-up: Lambda reads the table's stream (filtered in `template.yaml` to the
//! keys' rate windows) and hands each batch here; `hatched::usage` keeps the totals. Off the
//! request path: a request pays nothing for usage beyond the counting write it already made.
//! Locally, `hatchctl serve` and the tests read the stream themselves and call the same
//! [`readings`] and `Usage::roll_up`. Not an HTTP endpoint: its `FUNCTION` is listed in
//! `functions::OTHER_FUNCTIONS`.

pub use aws_lambda_events::dynamodb::Event as StreamEvent;
use hatched::App;
use hatched::domain::usage::WindowCount;
use hatched::endpoint::Function;
use hatched::handler::serving;
use hatched::store::{StoreError, window_of};
use hatched::usage::RolledUp;

pub const FUNCTION: Function = Function { function: "usage-rollup" };

/// The window counts of a batch, in stream order. Removals (a window's TTL) and anything but
/// a key's rate window are not usage.
pub fn readings(event: &StreamEvent) -> Vec<WindowCount> {
    event
        .records
        .iter()
        .filter(|r| r.event_name != "REMOVE")
        .filter_map(|r| {
            let image = &r.change.new_image;
            let pk = match image.get("pk") {
                Some(serde_dynamo::AttributeValue::S(pk)) => pk,
                _ => return None,
            };
            let count = match image.get("count") {
                Some(serde_dynamo::AttributeValue::N(n)) => n.parse::<i64>().ok()?,
                _ => return None,
            };
            window_of(pk, count)
        })
        .collect()
}

/// Rolls a batch up. An error fails the whole batch, which Lambda delivers again: every write
/// is idempotent, so a batch seen twice counts once.
pub async fn handle(app: &App, event: StreamEvent) -> Result<RolledUp, StoreError> {
    serving(FUNCTION.function, async {
        let done = app.usage.roll_up(readings(&event)).await;
        match &done {
            Ok(done) => tracing::info!(
                records = event.records.len(),
                windows = done.windows,
                unknown = done.unknown,
                "rolled up"
            ),
            Err(e) => {
                tracing::error!(cause = %e, records = event.records.len(), "roll-up failed; the batch comes again")
            }
        }
        done
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_as_the_key_windows_it_changed() {
        let text = include_str!("../../events/usage-rollup/batch.json");
        let event: StreamEvent = serde_json::from_str(text).unwrap();
        let readings = readings(&event);
        assert_eq!(event.records.len(), 4);
        // The anonymous IP window and the removal are not usage.
        assert_eq!(readings.len(), 2);
        assert_eq!(readings[0].count, 41);
        assert_eq!(readings[1].source.as_deref(), Some("9f86d081884c7d65"));
    }
}
