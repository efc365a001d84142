//! `hatchctl keys …`: the plaintext key (and HMAC secret) is printed once and never stored.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hatched::App;
use hatched::domain::quota::{InvalidQuota, MonthlyQuota};
use hatched::domain::token::SessionSubject;
use hatched::domain::{ApiKey, CustomerId, Environment, KeyPrefix, KeyRecord, KeyType, Tier};
use hatched::keys::{Issued, KeyError, KeyOptions, KeyPatch, Manager};
use serde_json::{Value, json};

use crate::Output;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Issue a key; prints the plaintext once.
    Issue(IssueArgs),
    /// Revoke a key; takes effect on the next request. `--sessions` also ends its sessions.
    Revoke(RevokeArgs),
    /// Issue a replacement with the same attributes; the old key expires after the grace period.
    Rotate(RotateArgs),
    /// Change a key's label, scopes, origins or signed-user-id requirement (audited).
    Update(UpdateArgs),
    /// List a customer's keys (never hashes or plaintext).
    List(ListArgs),
    /// One key's requests by outcome per minute, hour or day, with a bar chart.
    Usage(crate::usage::KeyUsageArgs),
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
    /// Comma-separated scopes (default: the key type's defaults, or none when --roles is given).
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// Comma-separated roles (built-in or the customer's own in this environment).
    #[arg(long, value_delimiter = ',')]
    pub roles: Option<Vec<String>>,
    /// Comma-separated origins for a publishable key (`https://*.example.com` allowed).
    #[arg(long, value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Publishable keys: embed-token mints and unlocks must carry an HMAC-signed user id.
    #[arg(long)]
    pub require_signed_user_id: bool,
    /// Requests per calendar month (UTC); absent: none.
    #[arg(long, value_parser = parse_quota)]
    pub monthly_quota: Option<MonthlyQuota>,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[arg(long)]
    pub prefix: KeyPrefixArg,
    /// Also end every widget session the key minted (a leaked key).
    #[arg(long)]
    pub sessions: bool,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    #[arg(long)]
    pub prefix: KeyPrefixArg,
    /// Hours the old key stays valid.
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u32).range(0..=720))]
    pub grace_hours: u32,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[arg(long)]
    pub prefix: KeyPrefixArg,
    #[arg(long)]
    pub label: Option<String>,
    /// Comma-separated scopes, replacing the key's.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// Comma-separated roles, replacing the key's (an empty value removes them all).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub roles: Option<Vec<String>>,
    /// Comma-separated origins, replacing the key's (publishable keys).
    #[arg(long, value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Require (true) or stop requiring (false) signed user ids; turning it on creates the
    /// HMAC secret if the key has none, printed once.
    #[arg(long)]
    pub require_signed_user_id: Option<bool>,
    /// Requests per calendar month (UTC); `none` removes the quota.
    #[arg(long, value_parser = parse_quota_or_none)]
    pub monthly_quota: Option<QuotaArg>,
}

/// `--monthly-quota` of `keys update`: a quota, or `none`.
#[derive(Debug, Clone, Copy)]
pub struct QuotaArg(pub Option<MonthlyQuota>);

fn parse_quota(text: &str) -> Result<MonthlyQuota, String> {
    let n: u64 = text.parse().map_err(|_| InvalidQuota.to_string())?;
    MonthlyQuota::new(n).map_err(|e| e.to_string())
}

fn parse_quota_or_none(text: &str) -> Result<QuotaArg, String> {
    match text {
        "none" => Ok(QuotaArg(None)),
        _ => parse_quota(text).map(|q| QuotaArg(Some(q))),
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long)]
    pub customer: CustomerId,
}

/// A display prefix on the command line (`hatch_live_Ab12Cd`).
#[derive(Debug, Clone)]
pub struct KeyPrefixArg(pub KeyPrefix);

impl std::str::FromStr for KeyPrefixArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        KeyPrefix::parse(s)
            .map(KeyPrefixArg)
            .ok_or_else(|| format!("{s:?} is not a key prefix (e.g. hatch_live_Ab12Cd)"))
    }
}

pub async fn execute(app: &App, cmd: KeysCommand) -> Result<Output> {
    let by = Manager::operator();
    match cmd {
        KeysCommand::Issue(args) => issue(app, args, &by).await,
        KeysCommand::Revoke(args) => revoke(app, &args.prefix.0, args.sessions, &by).await,
        KeysCommand::Rotate(args) => rotate(app, &args.prefix.0, args.grace_hours, &by).await,
        KeysCommand::Update(args) => update(app, args, &by).await,
        KeysCommand::List(args) => list(app, &args.customer).await,
        KeysCommand::Usage(args) => crate::usage::key_usage(app, args).await,
    }
}

async fn issue(app: &App, args: IssueArgs, by: &Manager<'_>) -> Result<Output> {
    let options = KeyOptions {
        tier: Some(args.tier),
        label: args.label,
        owner: args.owner,
        scopes: args.scopes,
        roles: args.roles.map(|r| r.into_iter().filter(|n| !n.is_empty()).collect()),
        allowed_origins: args.allowed_origins,
        require_signed_user_id: args.require_signed_user_id,
        monthly_quota: Some(args.monthly_quota),
    };
    let issued = match app.keys.issue_key(&args.customer, args.key_type, args.env, options, by).await {
        Err(KeyError::NoCustomer(c)) => bail!("no customer {c}: create it with `hatchctl customers create`"),
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

async fn revoke(app: &App, prefix: &KeyPrefix, sessions: bool, by: &Manager<'_>) -> Result<Output> {
    let revoked = app.keys.revoke_key(prefix, by).await.map_err(not_found(prefix))?;
    let at = revoked.revoked_at.context("revocation not recorded")?.rfc3339();
    let mut out = Output::new(
        json!({ "prefix": revoked.prefix, "revoked_at": at }),
        format!("{} revoked at {at}", revoked.prefix),
    );
    if sessions {
        let subject = SessionSubject::Key(revoked.prefix.clone());
        let before = app.keys.revoke_sessions(&revoked.customer_id, revoked.environment, &subject, by).await?;
        out.json["sessions_revoked_before"] = Value::from(before.rfc3339());
        out.text.push_str(&format!("\nits sessions issued until {} are revoked", before.rfc3339()));
    }
    Ok(out)
}

async fn rotate(app: &App, prefix: &KeyPrefix, grace_hours: u32, by: &Manager<'_>) -> Result<Output> {
    let (Issued { key, record, .. }, old) =
        app.keys.roll_key(prefix, i64::from(grace_hours) * 3600, by).await.map_err(not_found(prefix))?;
    let expires = old.expires_at.context("the old key has no expiry")?.rfc3339();
    let mut out = issued_output(&key, &record, None);
    out.json["old_prefix"] = Value::from(old.prefix.as_str());
    out.json["old_expires_at"] = Value::from(expires.clone());
    out.text.push_str(&format!("\n{} stays valid until {expires}.", old.prefix));
    Ok(out)
}

async fn update(app: &App, args: UpdateArgs, by: &Manager<'_>) -> Result<Output> {
    let patch = KeyPatch {
        label: args.label.map(Some),
        scopes: args.scopes,
        roles: args.roles.map(|r| r.into_iter().filter(|n| !n.is_empty()).collect()),
        allowed_origins: args.allowed_origins,
        require_signed_user_id: args.require_signed_user_id,
        monthly_quota: args.monthly_quota.map(|q| q.0),
    };
    let prefix = &args.prefix.0;
    let (record, secret) = app.keys.update_key(prefix, &patch, by).await.map_err(not_found(prefix))?;
    let mut out = Output::new(
        json!({ "prefix": record.prefix, "label": record.label, "scopes": record.scopes, "roles": record.roles,
                "effective_scopes": record.effective_scopes(),
                "allowed_origins": record.allowed_origins, "require_signed_user_id": record.require_signed_user_id,
                "monthly_quota": record.monthly_quota }),
        format!("{} updated", record.prefix),
    );
    if let Some(secret) = secret {
        out.json["hmac_secret"] = Value::from(secret.expose());
        out.text.push_str(&format!(
            "\n  hmac secret (signed user ids): {}\nThe HMAC secret is shown only now.",
            secret.expose()
        ));
    }
    Ok(out)
}

fn not_found(prefix: &KeyPrefix) -> impl Fn(KeyError) -> anyhow::Error + '_ {
    move |e| match e {
        KeyError::NotFound => anyhow::anyhow!("no key with prefix {prefix}"),
        other => other.into(),
    }
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
                "roles": k.roles, "monthly_quota": k.monthly_quota,
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
