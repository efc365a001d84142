//! The usage roll-up: Lambda reads the table's stream (filtered in `template.yaml` to the
//! keys' rate windows) and hands each batch here; `hatched::usage` keeps the totals. Off the
//! request path: a request pays nothing for usage beyond the counting write it already made.
//! Locally, `hatchctl serve` and the tests read the stream themselves and call the same
//! [`readings`] and `Usage::roll_up`. Not an HTTP endpoint: its `FUNCTION` is listed in
//! `functions::OTHER_FUNCTIONS`.

pub use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use hatched::App;
use hatched::app::ConfigError;
use hatched::domain::UnixTime;
use hatched::domain::usage::{EVENT_SOURCE, LimitEvent, WindowCount};
use hatched::endpoint::Function;
use hatched::handler::serving;
use hatched::store::{Numbers, windows_of};
use hatched::usage::{EventSink, RollUpError, RolledUp};

pub const FUNCTION: Function = Function { function: "usage-rollup" };

/// Environment variable naming the EventBridge bus limit events go to.
pub const EVENT_BUS_ENV: &str = "HATCHED_EVENT_BUS";

/// PutEvents takes at most 10 entries.
const PUT_EVENTS_MAX: usize = 10;

/// Limit events to an EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeSink {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> EventBridgeSink {
        EventBridgeSink { client, bus: bus.into() }
    }

    /// The bus `HATCHED_EVENT_BUS` names.
    pub fn from_env(config: &aws_sdk_eventbridge::config::Config) -> Result<EventBridgeSink, ConfigError> {
        let bus = std::env::var(EVENT_BUS_ENV).map_err(|_| ConfigError::Missing(EVENT_BUS_ENV))?;
        Ok(EventBridgeSink::new(aws_sdk_eventbridge::Client::from_conf(config.clone()), bus))
    }
}

impl EventSink for EventBridgeSink {
    async fn publish(&self, events: &[LimitEvent]) -> Vec<bool> {
        let mut delivered = Vec::with_capacity(events.len());
        for chunk in events.chunks(PUT_EVENTS_MAX) {
            let entries = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(EVENT_SOURCE)
                        .detail_type(e.kind.detail_type())
                        .detail(e.detail().to_string())
                        .build()
                })
                .collect();
            match self.client.put_events().set_entries(Some(entries)).send().await {
                // One result per entry, in order: an entry with an error code was not put.
                Ok(out) => {
                    let results = out.entries();
                    delivered.extend(
                        (0..chunk.len()).map(|i| {
                            results.get(i).is_some_and(|r| r.error_code().is_none() && r.event_id().is_some())
                        }),
                    );
                }
                Err(e) => {
                    tracing::warn!(cause = %hatched::aws::classify("put_events", e), events = chunk.len(), "limit events not published");
                    delivered.extend(std::iter::repeat_n(false, chunk.len()));
                }
            }
        }
        delivered
    }
}

/// The window counts of a batch, in stream order. Removals (a counter's TTL) and anything but
/// a key's counter are not usage.
pub fn readings(event: &StreamEvent) -> Vec<WindowCount> {
    event
        .records
        .iter()
        .filter(|r| r.event_name != "REMOVE")
        .flat_map(|r| {
            let image = &r.change.new_image;
            let pk = match image.get("pk") {
                Some(serde_dynamo::AttributeValue::S(pk)) => pk.as_str(),
                _ => "",
            };
            let numbers: Numbers = image
                .iter()
                .filter_map(|(name, value)| match value {
                    serde_dynamo::AttributeValue::N(n) => Some((name.clone(), n.parse::<i64>().ok()?)),
                    _ => None,
                })
                .collect();
            // Absent in some records (it then reads as the epoch).
            let seen = r.change.approximate_creation_date_time.timestamp();
            windows_of(pk, &numbers, (seen > 0).then(|| UnixTime::from_secs(seen)))
        })
        .collect()
}

/// Rolls a batch up and publishes its limit events. An error fails the whole batch, which
/// Lambda delivers again: every write is idempotent and an event published is not published
/// again, so a batch seen twice counts once; an event not delivered is published then.
pub async fn handle<S: EventSink>(app: &App, sink: &S, event: StreamEvent) -> Result<RolledUp, RollUpError> {
    serving(FUNCTION.function, async {
        let done = app.usage.roll_up(readings(&event), sink).await;
        match &done {
            Ok(done) => tracing::info!(
                records = event.records.len(),
                windows = done.windows,
                unknown = done.unknown,
                events = done.events,
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
    use hatched::domain::usage::Span;

    #[test]
    fn a_batch_reads_as_the_key_windows_it_changed() {
        let text = include_str!("../../events/usage-rollup/batch.json");
        let event: StreamEvent = serde_json::from_str(text).unwrap();
        let readings = readings(&event);
        assert_eq!(event.records.len(), 4);
        // A secret key's month item: its month and the minute the write changed (`w`), not
        // the minute before it. The anonymous IP window and the removal are not usage.
        let seen: Vec<_> = readings.iter().map(|r| (r.span, r.window_start.secs(), r.count)).collect();
        assert_eq!(seen[..2], [(Span::Month, 1_793_491_200, 1041), (Span::Minute, 1_795_608_000, 41)]);
        assert_eq!(readings.len(), 3);
        assert_eq!(
            readings[2].source.as_deref(),
            Some("9f86d081884c7d650f3e4b2a1d0e9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a39281")
        );
    }
}
