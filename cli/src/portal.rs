//! `hatchctl portal`: a key portal session for an existing key, minted by the operator.

use anyhow::{Result, anyhow, bail};
use clap::Args;
use hatched::App;
use hatched::domain::audit::Actor;
use hatched::domain::portal::{PORTAL_TTL, PortalLabel};
use hatched::domain::{KeyType, Scope, UnixTime};
use hatched::tokens::Minted;
use serde_json::json;

use crate::keys::KeyPrefixArg;

#[derive(Args, Debug)]
pub struct PortalArgs {
    /// The key the session acts for: a live secret key holding keys:write.
    #[arg(long)]
    pub prefix: KeyPrefixArg,
    /// Who uses the portal (named in the audit trail as portal:<prefix>:<label>).
    #[arg(long, value_parser = parse_label)]
    pub label: PortalLabel,
    #[arg(long, default_value_t = PORTAL_TTL.default, value_parser = clap::value_parser!(u32).range(i64::from(PORTAL_TTL.min)..=i64::from(PORTAL_TTL.max)))]
    pub ttl_seconds: u32,
    /// The API serving the portal page (scripts/dev's local API unless told).
    #[arg(long, env = "HATCHED_PORTAL_BASE_URL", default_value = "http://127.0.0.1:3000")]
    pub base_url: String,
}

fn parse_label(text: &str) -> Result<PortalLabel, String> {
    PortalLabel::parse(text).ok_or_else(|| "1 to 64 printable characters, no leading or trailing space".to_owned())
}

/// Mints the session (audited as `operator`) and prints the portal's URL.
pub async fn mint(app: &App, args: PortalArgs) -> Result<crate::Output> {
    let prefix = &args.prefix.0;
    let mut key = app.store.key_by_prefix(prefix).await?.ok_or_else(|| anyhow!("no key {prefix}"))?;
    app.roles.resolve(&mut key).await.map_err(|e| anyhow!("{prefix}'s roles: {e}"))?;
    if key.key_type != KeyType::Secret || !key.has_scope(Scope::KeysWrite) {
        bail!("{prefix} is not a secret key holding keys:write");
    }
    if let Err(dead) = key.usable_at(app.clock.now()) {
        bail!("{prefix} is not usable: {dead:?}");
    }
    let minted = app.tokens.mint_portal(&key, &args.label, i64::from(args.ttl_seconds), &Actor::operator()).await?;
    let Minted { token, minted } = minted;
    let url = format!("{}/portal#token={token}", args.base_url.trim_end_matches('/'));
    let expires_at = UnixTime::from_secs(minted.exp).rfc3339();
    Ok(crate::Output::new(
        json!({ "url": url, "token": token, "expires_at": expires_at, "acts_as": minted.act }),
        format!("{url}\n(acts as {}; ends {expires_at})", minted.act),
    ))
}
