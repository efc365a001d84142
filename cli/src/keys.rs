//! `hatchctl keys …`: the plaintext key (and HMAC secret) is printed once and never stored.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hatched::App;
use hatched::domain::{ApiKey, CustomerId, Environment, KeyPrefix, KeyRecord, KeyType, Tier};
use hatched::keys::{IssueError, Issued, KeyOptions};
use serde_json::{Value, json};

use crate::Output;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Issue a key; prints the plaintext once.
    Issue(IssueArgs),
    /// Revoke a key; takes effect on the next request.
    Revoke(PrefixArgs),
    /// Issue a replacement with the same attributes; the old key expires after the grace period.
    Rotate(RotateArgs),
    /// List a customer's keys (never hashes or plaintext).
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct IssueArgs {
    #[arg(long)]
    pub customer: CustomerId,
    #[arg(long = "type")]
    pub key_type: KeyType,
    #[arg(long)]
    pub env: Environment,
    #[arg(long, default_value = "free")]
    pub tier: Tier,
    #[arg(long)]
    pub label: Option<String>,
    #[arg(long)]
    pub owner: Option<String>,
    /// Comma-separated scopes (default: the key type's defaults).
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// Comma-separated origins for a publishable key (`https://*.example.com` allowed).
    #[arg(long, value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Publishable keys: embed-token mints must carry an HMAC-signed user id.
    #[arg(long)]
    pub require_signed_user_id: bool,
}

#[derive(Args, Debug)]
pub struct PrefixArgs {
    #[arg(long)]
    pub prefix: String,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    #[arg(long)]
    pub prefix: String,
    /// Hours the old key stays valid.
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u32).range(0..=720))]
    pub grace_hours: u32,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long)]
    pub customer: CustomerId,
}

pub async fn execute(app: &App, cmd: KeysCommand) -> Result<Output> {
    match cmd {
        KeysCommand::Issue(args) => issue(app, args).await,
        KeysCommand::Revoke(args) => revoke(app, &args.prefix).await,
        KeysCommand::Rotate(args) => rotate(app, &args.prefix, args.grace_hours).await,
        KeysCommand::List(args) => list(app, &args.customer).await,
    }
}

async fn issue(app: &App, args: IssueArgs) -> Result<Output> {
    let options = KeyOptions {
        tier: Some(args.tier),
        label: args.label,
        owner: args.owner,
        scopes: args.scopes,
        allowed_origins: args.allowed_origins,
        require_signed_user_id: args.require_signed_user_id,
    };
    let issued = match app.issue_key(&args.customer, args.key_type, args.env, options).await {
        Err(IssueError::NoCustomer(c)) => bail!("no customer {c}: create it with `hatchctl customers create`"),
        other => other?,
    };
    Ok(issued_output(&issued.key, &issued.record, issued.hmac_secret.as_ref().map(|s| s.expose())))
}

fn issued_output(key: &ApiKey, record: &KeyRecord, hmac_secret: Option<&str>) -> Output {
    let mut json = json!({ "key": key.expose(), "prefix": record.prefix });
    let mut text = format!(
        "{} key for {} ({}, {})\n  key:    {}\n  prefix: {}\nThe key is shown only now: store it safely.",
        record.key_type,
        record.customer_id,
        record.environment,
        record.tier,
        key.expose(),
        record.prefix
    );
    if let Some(secret) = hmac_secret {
        json["hmac_secret"] = Value::from(secret);
        text.push_str(&format!("\n  hmac secret (signed user ids): {secret}\nThe HMAC secret is shown only now."));
    }
    Output::new(json, text)
}

async fn find(app: &App, prefix: &str) -> Result<KeyRecord> {
    let parsed =
        KeyPrefix::parse(prefix).with_context(|| format!("{prefix:?} is not a key prefix (e.g. hatch_live_Ab12Cd)"))?;
    let hash = app.store.key_hash_by_prefix(&parsed).await?.with_context(|| format!("no key with prefix {prefix}"))?;
    app.store.get_key(&hash).await?.with_context(|| format!("no key with prefix {prefix}"))
}

async fn revoke(app: &App, prefix: &str) -> Result<Output> {
    let record = find(app, prefix).await?;
    let revoked = app.store.revoke_key(&record.key_hash, app.clock.now()).await?;
    let at = revoked.revoked_at.context("revocation not recorded")?.rfc3339();
    Ok(Output::new(
        json!({ "prefix": revoked.prefix, "revoked_at": at }),
        format!("{} revoked at {at}", revoked.prefix),
    ))
}

async fn rotate(app: &App, prefix: &str, grace_hours: u32) -> Result<Output> {
    let old = find(app, prefix).await?;
    if old.revoked_at.is_some() {
        bail!("{prefix} is revoked; issue a new key instead");
    }
    let now = app.clock.now();
    if old.usable_at(now).is_err() {
        bail!("{prefix} has already expired; issue a new key instead");
    }
    let (Issued { key, record, .. }, expires) = app.roll_key(&old, i64::from(grace_hours) * 3600).await?;
    let mut out = issued_output(&key, &record, None);
    out.json["old_prefix"] = Value::from(old.prefix.as_str());
    out.json["old_expires_at"] = Value::from(expires.rfc3339());
    out.text.push_str(&format!("\n{} stays valid until {}.", old.prefix, expires.rfc3339()));
    Ok(out)
}

async fn list(app: &App, customer: &CustomerId) -> Result<Output> {
    let keys = app.store.list_keys(customer).await?;
    let time = |t: Option<hatched::domain::UnixTime>| t.map(|t| t.rfc3339());
    let rows: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "prefix": k.prefix, "type": k.key_type, "environment": k.environment, "tier": k.tier,
                "label": k.label, "scopes": k.scopes, "created_at": k.created_at.rfc3339(),
                "last_used_at": time(k.last_used_at), "revoked_at": time(k.revoked_at), "expires_at": time(k.expires_at),
            })
        })
        .collect();
    let mut text = format!(
        "{:<17} {:<11} {:<4} {:<10} {:<20} {:<20} {:<20} {:<20} {}\n",
        "PREFIX", "TYPE", "ENV", "TIER", "CREATED", "LAST USED", "REVOKED", "EXPIRES", "LABEL"
    );
    for k in &keys {
        let show = |t: Option<hatched::domain::UnixTime>| time(t).unwrap_or_else(|| "-".into());
        text.push_str(&format!(
            "{:<17} {:<11} {:<4} {:<10} {:<20} {:<20} {:<20} {:<20} {}\n",
            k.prefix.as_str(),
            k.key_type.as_str(),
            k.environment.as_str(),
            k.tier.as_str(),
            k.created_at.rfc3339(),
            show(k.last_used_at),
            show(k.revoked_at),
            show(k.expires_at),
            k.label.as_deref().unwrap_or("-")
        ));
    }
    Ok(Output::new(json!({ "customer_id": customer, "keys": rows }), text.trim_end().to_owned()))
}
