//! `hatchctl keys usage` (one key's series, as the usage route answers it, with a bar chart)
//! and `hatchctl usage` (every key's month total for a customer: what billing reads).

use anyhow::{Context, Result, anyhow};
use clap::Args;
use hatched::App;
use hatched::domain::usage::{Counts, UsagePoint, month_span, parse_rfc3339};
use hatched::domain::{CustomerId, KeyPrefix, UnixTime};
use serde_json::{Value, json};

use crate::Output;

#[derive(Args, Debug)]
pub struct KeyUsageArgs {
    #[arg(long)]
    pub prefix: crate::keys::KeyPrefixArg,
    /// minute (last 2 h), hour (last 35 days) or day (last 400 days).
    #[arg(long, default_value = "hour")]
    pub granularity: String,
    /// From when: an RFC 3339 time or an age such as `90m`, `12h`, `30d` (default: the 24
    /// buckets ending now).
    #[arg(long)]
    pub since: Option<String>,
}

#[derive(Args, Debug)]
pub struct MonthArgs {
    #[arg(long)]
    pub customer: CustomerId,
    /// A calendar month, UTC: `2026-12`.
    #[arg(long)]
    pub month: String,
}

/// Width of the longest bar.
const BAR: u64 = 40;

pub async fn key_usage(app: &App, args: KeyUsageArgs) -> Result<Output> {
    let prefix = &args.prefix.0;
    let record = app.store.key_by_prefix(prefix).await?.ok_or_else(|| anyhow!("no key with prefix {prefix}"))?;
    let from = args.since.as_deref().map(|since| since_time(since, app.clock.now())).transpose()?;
    let from = from.map(UnixTime::rfc3339);
    let query = app.usage.query(Some(&args.granularity), from.as_deref(), None)?;
    let points = app.usage.series(&record.prefix, &query).await?;
    let view = hatched::views::UsageView::new(&record.prefix, &query, &points);
    Ok(Output::new(serde_json::to_value(&view)?, chart(&record.prefix, query.granularity.as_str(), &points)))
}

/// `90m`, `12h`, `30d` before `now`, or an RFC 3339 time.
fn since_time(text: &str, now: UnixTime) -> Result<UnixTime> {
    if let Some(t) = parse_rfc3339(text) {
        return Ok(t);
    }
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: i64 = number.parse().with_context(|| format!("--since {text:?}: an RFC 3339 time or 90m, 12h, 30d"))?;
    let secs = match unit {
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(anyhow!("--since {text:?}: an RFC 3339 time or 90m, 12h, 30d")),
    };
    Ok(now.plus_secs(-number.saturating_mul(secs)))
}

/// A table with a bar per bucket: `█` accepted, `░` refused (rate limited or over quota).
fn chart(prefix: &KeyPrefix, granularity: &str, points: &[UsagePoint]) -> String {
    let most = points.iter().map(|p| p.counts.total()).max().unwrap_or(0).max(1);
    let mut total = Counts::default();
    let mut text = format!(
        "{prefix} per {granularity}\n{:<20} {:>9} {:>12} {:>14}\n",
        "START", "ACCEPTED", "RATE_LIMITED", "QUOTA_EXCEEDED"
    );
    for p in points {
        let c = p.counts;
        total += c;
        let width = |n: u64| (n * BAR).div_ceil(most) as usize;
        let refused = c.rate_limited + c.quota_exceeded;
        text.push_str(&format!(
            "{:<20} {:>9} {:>12} {:>14} {}{}\n",
            p.start.rfc3339(),
            c.accepted,
            c.rate_limited,
            c.quota_exceeded,
            "█".repeat(width(c.accepted)),
            "░".repeat(width(refused))
        ));
    }
    text.push_str(&format!(
        "{:<20} {:>9} {:>12} {:>14}",
        "TOTAL", total.accepted, total.rate_limited, total.quota_exceeded
    ));
    text
}

pub async fn month(app: &App, args: MonthArgs) -> Result<Output> {
    let (from, to) = month_span(&args.month).ok_or_else(|| anyhow!("--month {:?}: YYYY-MM", args.month))?;
    let keys = app.store.list_keys(&args.customer).await?;
    let mut rows = Vec::new();
    let mut sum = Counts::default();
    let mut text = format!(
        "{} {}\n{:<17} {:<11} {:<4} {:>9} {:>12} {:>14}\n",
        args.customer, args.month, "PREFIX", "TYPE", "ENV", "ACCEPTED", "RATE_LIMITED", "QUOTA_EXCEEDED"
    );
    for key in &keys {
        let c = app.usage.total(&key.prefix, from, to).await?;
        sum += c;
        rows.push(json!({ "prefix": key.prefix, "type": key.key_type, "environment": key.environment,
            "accepted": c.accepted, "rate_limited": c.rate_limited, "quota_exceeded": c.quota_exceeded }));
        text.push_str(&format!(
            "{:<17} {:<11} {:<4} {:>9} {:>12} {:>14}\n",
            key.prefix.as_str(),
            key.key_type.as_str(),
            key.environment.as_str(),
            c.accepted,
            c.rate_limited,
            c.quota_exceeded
        ));
    }
    text.push_str(&format!("{:<34} {:>9} {:>12} {:>14}", "TOTAL", sum.accepted, sum.rate_limited, sum.quota_exceeded));
    let total =
        json!({ "accepted": sum.accepted, "rate_limited": sum.rate_limited, "quota_exceeded": sum.quota_exceeded });
    let json: Value = json!({ "customer_id": args.customer, "month": args.month, "from": from.rfc3339(),
        "to": to.rfc3339(), "keys": rows, "total": total });
    Ok(Output::new(json, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_an_age_or_a_time() {
        let now = UnixTime::from_secs(1_000_000);
        assert_eq!(since_time("90m", now).unwrap().secs(), 1_000_000 - 5_400);
        assert_eq!(since_time("2d", now).unwrap().secs(), 1_000_000 - 172_800);
        assert_eq!(since_time("1970-01-01T00:01:00Z", now).unwrap().secs(), 60);
        for bad in ["", "h", "5w", "-5m", "5 m"] {
            assert!(since_time(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn bars_scale_to_the_busiest_bucket() {
        let prefix = KeyPrefix::parse("hatch_live_Ab12Cd").unwrap();
        let point = |a, r| UsagePoint {
            start: UnixTime::from_secs(0),
            counts: Counts { accepted: a, rate_limited: r, quota_exceeded: 0 },
        };
        let text = chart(&prefix, "minute", &[point(60, 20), point(0, 0), point(10, 0)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2].matches('█').count(), 30);
        assert_eq!(lines[2].matches('░').count(), 10);
        assert_eq!(lines[3].matches(['█', '░']).count(), 0);
        assert_eq!(lines[4].matches('█').count(), 5);
        assert!(lines[5].starts_with("TOTAL") && lines[5].contains("70") && lines[5].contains("20"));
    }
}
