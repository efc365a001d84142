//! The usage roll-up's stream consumer for local stacks: deployed, Lambda reads the table's
//! stream and invokes `usage-rollup`; here `hatchctl serve` (every second) and the tests (on
//! demand, [`StreamConsumer::drain`]) read it through DynamoDB Streams themselves and hand
//! the same readings to the same `Usage::roll_up`, as that function.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record, ShardIteratorType};
use functions::usage_rollup::EventBridgeSink;
use hatched::App;
use hatched::domain::UnixTime;
use hatched::domain::usage::{LimitEvent, WindowCount};
use hatched::handler::serving;
use hatched::usage::{EventSink, LogSink};

/// Reads a table's stream from its start, shard by shard.
#[derive(Debug)]
pub struct StreamConsumer {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    /// Where each shard's reading goes on: `None` once a closed shard is read to its end.
    positions: BTreeMap<String, Option<String>>,
}

impl StreamConsumer {
    /// The consumer of `app`'s table stream (the table is created with one).
    pub async fn new(app: &App, config: &aws_sdk_dynamodbstreams::Config) -> Result<StreamConsumer> {
        let stream_arn = app.store.stream_arn().await?.context("the table has no stream")?;
        let client = aws_sdk_dynamodbstreams::Client::from_conf(config.clone());
        Ok(StreamConsumer { client, stream_arn, positions: BTreeMap::new() })
    }

    /// Reads every record the stream holds past the last call and rolls them up; the number of
    /// records read. A shard's position moves only past records rolled up, so a failure is
    /// read again next time (as Lambda sends a failed batch again).
    pub async fn drain<S: EventSink>(&mut self, app: &App, sink: &S) -> Result<usize> {
        let stream = self.client.describe_stream().stream_arn(&self.stream_arn).send().await?;
        let shards = stream.stream_description.map(|d| d.shards.unwrap_or_default()).unwrap_or_default();
        let mut read = 0;
        for shard in shards {
            let Some(id) = shard.shard_id else { continue };
            if !self.positions.contains_key(&id) {
                let iterator = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(&id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await?
                    .shard_iterator;
                self.positions.insert(id.clone(), iterator);
            }
            while let Some(Some(iterator)) = self.positions.get(&id).cloned() {
                let out = self.client.get_records().shard_iterator(iterator).limit(1000).send().await?;
                let records = out.records.unwrap_or_default();
                if !records.is_empty() {
                    let rolled = app.usage.roll_up(readings(&records), sink);
                    serving(functions::usage_rollup::FUNCTION.function, rolled).await?;
                }
                read += records.len();
                let caught_up = records.is_empty();
                self.positions.insert(id.clone(), out.next_shard_iterator);
                if caught_up {
                    break;
                }
            }
        }
        Ok(read)
    }
}

/// What `functions::usage_rollup::readings` takes from a Lambda event, from the SDK's records.
fn readings(records: &[Record]) -> Vec<WindowCount> {
    records
        .iter()
        .filter(|r| r.event_name != Some(OperationType::Remove))
        .flat_map(|r| {
            let Some(image) = r.dynamodb.as_ref().and_then(|d| d.new_image.as_ref()) else { return Vec::new() };
            let pk = match image.get("pk") {
                Some(AttributeValue::S(pk)) => pk.as_str(),
                _ => "",
            };
            let numbers: hatched::store::Numbers = image
                .iter()
                .filter_map(|(name, value)| match value {
                    AttributeValue::N(n) => Some((name.clone(), n.parse::<i64>().ok()?)),
                    _ => None,
                })
                .collect();
            let seen = r
                .dynamodb
                .as_ref()
                .and_then(|d| d.approximate_creation_date_time)
                .map(|t| UnixTime::from_secs(t.secs()));
            hatched::store::windows_of(pk, &numbers, seen)
        })
        .collect()
}

/// Where the local API's limit events go: the bus `HATCHED_EVENT_BUS` names on the emulator,
/// or a log line.
#[derive(Debug, Clone)]
pub enum LocalSink {
    Bus(EventBridgeSink),
    Log(LogSink),
}

impl LocalSink {
    pub fn from_env(config: &aws_sdk_eventbridge::Config) -> LocalSink {
        match EventBridgeSink::from_env(config) {
            Ok(bus) => LocalSink::Bus(bus),
            Err(_) => LocalSink::Log(LogSink),
        }
    }
}

impl EventSink for LocalSink {
    async fn publish(&self, events: &[LimitEvent]) -> Vec<bool> {
        match self {
            LocalSink::Bus(bus) => bus.publish(events).await,
            LocalSink::Log(log) => log.publish(events).await,
        }
    }
}

/// `hatchctl serve`'s consumer: drains the stream every `every` until dropped; a failure is
/// logged and read again at the next tick.
pub async fn run(app: App, config: aws_sdk_dynamodbstreams::Config, sink: LocalSink, every: Duration) {
    let mut consumer = loop {
        match StreamConsumer::new(&app, &config).await {
            Ok(consumer) => break consumer,
            Err(e) => {
                tracing::warn!(cause = %format!("{e:#}"), "usage roll-up waits for the table's stream");
                tokio::time::sleep(every * 5).await;
            }
        }
    };
    loop {
        if let Err(e) = consumer.drain(&app, &sink).await {
            // From the stream's start again: a shard iterator expires after 15 minutes, and
            // every write is idempotent, so reading it all again is only slower.
            tracing::warn!(cause = %format!("{e:#}"), "usage roll-up failed; reading the stream again");
            consumer.positions.clear();
        }
        tokio::time::sleep(every).await;
    }
}
