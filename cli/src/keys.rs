//! `hatchctl keys …`: the plaintext key (and HMAC secret) is printed once and never stored.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use hatched::App;
use hatched::domain::key::random_base62;
use hatched::domain::{
    ApiKey, CustomerId, Environment, KeyKind, KeyPrefix, KeyRecord, KeyType, Tier, TokenKey, grant_scopes, origin,
};
use hatched::store::StoreError;
use serde_json::{Value, json};

use crate::{Output, require_customer};

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

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum TypeArg {
    Secret,
    Publishable,
}

#[derive(Args, Debug)]
pub struct IssueArgs {
    #[arg(long)]
    pub customer: CustomerId,
    #[arg(long = "type", value_enum)]
    pub key_type: TypeArg,
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
    let key_type = match args.key_type {
        TypeArg::Secret => KeyType::Secret,
        TypeArg::Publishable => KeyType::Publishable,
    };
    if key_type == KeyType::Secret && (!args.allowed_origins.is_empty() || args.require_signed_user_id) {
        bail!("--allowed-origins and --require-signed-user-id apply to publishable keys only");
    }
    for o in &args.allowed_origins {
        match origin::check_pattern(o) {
            Ok(()) => {}
            Err(origin::OriginPatternError::Malformed) => {
                bail!("{o:?} is not an origin (expected https://host[:port] or https://*.domain)")
            }
            Err(e) => bail!("{o:?} is refused: {e}"),
        }
    }
    let scopes = grant_scopes(key_type, args.scopes.as_deref())?;
    let customer = require_customer(app, &args.customer).await?;
    let template = KeyTemplate {
        key_type,
        environment: args.env,
        customer_id: args.customer,
        primary_token: customer.primary_token,
        tier: args.tier,
        scopes,
        allowed_origins: args.allowed_origins,
        hmac_secret: args.require_signed_user_id.then(|| random_base62(40)),
        label: args.label,
        owner: args.owner,
    };
    let (key, record) = create_from(app, &template).await?;
    Ok(issued_output(&key, &record, record.hmac_secret.as_deref()))
}

/// The attributes a key is issued with (shared by issue and rotate).
struct KeyTemplate {
    key_type: KeyType,
    environment: Environment,
    customer_id: CustomerId,
    primary_token: TokenKey,
    tier: Tier,
    scopes: BTreeSet<hatched::domain::Scope>,
    allowed_origins: Vec<String>,
    hmac_secret: Option<String>,
    label: Option<String>,
    owner: Option<String>,
}

async fn create_from(app: &App, t: &KeyTemplate) -> Result<(ApiKey, KeyRecord)> {
    // A prefix collision (1 in 62^6 per pair) just means drawing again.
    for _ in 0..5 {
        let key = ApiKey::generate(KeyKind::for_issue(t.key_type, t.environment));
        let record = KeyRecord {
            key_hash: key.hash(),
            prefix: key.prefix(),
            key_type: t.key_type,
            environment: t.environment,
            customer_id: t.customer_id.clone(),
            primary_token: t.primary_token.clone(),
            tier: t.tier,
            scopes: t.scopes.clone(),
            allowed_origins: t.allowed_origins.clone(),
            require_signed_user_id: t.hmac_secret.is_some(),
            hmac_secret: t.hmac_secret.clone(),
            label: t.label.clone(),
            owner: t.owner.clone(),
            created_at: app.clock.now(),
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
        };
        match app.store.create_key(&record).await {
            Ok(()) => return Ok((key, record)),
            Err(StoreError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    bail!("could not find a free key prefix after 5 attempts")
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
    let template = KeyTemplate {
        key_type: old.key_type,
        environment: old.environment,
        customer_id: old.customer_id.clone(),
        primary_token: old.primary_token.clone(),
        tier: old.tier,
        scopes: old.scopes.clone(),
        allowed_origins: old.allowed_origins.clone(),
        // The signing secret lives with the customer's backend; rotating the key keeps it.
        hmac_secret: old.hmac_secret.clone(),
        label: old.label.clone(),
        owner: old.owner.clone(),
    };
    let (key, record) = create_from(app, &template).await?;
    // Never lengthen an expiry already set by an earlier rotation.
    let grace_end = now.plus_secs(i64::from(grace_hours) * 3600);
    let expires = old.expires_at.map_or(grace_end, |e| e.min(grace_end));
    app.store.set_key_expiry(&old.key_hash, expires).await?;
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
