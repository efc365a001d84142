//! `hatchctl`: the operator CLI and the local API. Every command returns an [`Output`]
//! with a JSON form (`--json`) and a human form; tests call [`run_args`] directly.

pub mod gates;
pub mod keys;
pub mod model;
pub mod portal;
pub mod roles;
pub mod rollup;
pub mod seed;
pub mod serve;
pub mod usage;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use hatched::App;
use hatched::domain::gate::Customer;
use hatched::domain::{BuddyId, CustomerId, Environment, TokenKey};
use hatched::store::StoreError;
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(
    name = "hatchctl",
    version,
    about = "Operate the Hatched auth edge: table, customers, keys, buddies, local API"
)]
pub struct Cli {
    /// DynamoDB table name.
    #[arg(long, env = "HATCHED_TABLE", global = true, default_value = "hatched")]
    pub table: String,
    /// Secrets Manager secret (name or ARN) holding the signing-key material.
    #[arg(long, env = "HATCHED_SIGNING_SECRET", global = true, default_value = "hatched-signing-key")]
    pub signing_secret: String,
    /// Secrets Manager secret (name or ARN) of the data key that seals HMAC secrets at rest.
    #[arg(long, env = "HATCHED_DATA_KEY_SECRET", global = true, default_value = "hatched-data-key")]
    pub data_key_secret: String,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Wait up to this long for each AWS call (all attempts) instead of the functions' 5 s.
    /// For a local emulator: a single Python process that can pause for seconds (scripts/test
    /// serves the fuzzed API with 60, as the suite's own clients wait).
    #[arg(long, env = "HATCHED_SDK_TIMEOUT_SECS", global = true, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub sdk_timeout_secs: Option<u64>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The DynamoDB table.
    #[command(subcommand)]
    Table(TableCommand),
    /// Customers and their token keys.
    #[command(subcommand)]
    Customers(CustomersCommand),
    /// API keys: issue, revoke, rotate, list.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Roles: named sets of scopes a key may hold (resolved at each request).
    #[command(subcommand)]
    Roles(roles::RolesCommand),
    /// A key portal session for an existing key (prints the page's URL).
    Portal(portal::PortalArgs),
    /// Every key's requests in a calendar month, by outcome (what billing needs).
    Usage(usage::MonthArgs),
    /// Buddies (token mints need one).
    #[command(subcommand)]
    Buddies(BuddiesCommand),
    /// Widget sessions: end every session of a user, a buddy or a key at once.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Gates that spend the primary token.
    #[command(subcommand)]
    Gates(gates::GatesCommand),
    /// Buddy balances (credit, show with unlocks and ledger).
    #[command(subcommand)]
    Balances(gates::BalancesCommand),
    /// The Ed25519 signing key in Secrets Manager.
    #[command(subcommand)]
    SigningKey(SigningKeyCommand),
    /// Create the table, the signing key and the demo world (customer, buddies, gates,
    /// balances, keys); prints the plaintext keys once.
    SeedDemo(SeedDemoArgs),
    /// Run every route of template.yaml on 127.0.0.1 against the configured stack.
    Serve(serve::ServeArgs),
    /// A DynamoDB behaviour model in front of a local emulator: transaction conflicts,
    /// throttling, pages cut by size, partial batches (point AWS_ENDPOINT_URL at it).
    DynamodbModel(model::ModelArgs),
}

#[derive(Args, Debug)]
pub struct SeedDemoArgs {
    #[arg(long, default_value = "demo")]
    pub customer: String,
}

#[derive(Subcommand, Debug)]
pub enum TableCommand {
    /// Create the table (keys, GSI, TTL) if it does not exist.
    Create,
}

#[derive(Subcommand, Debug)]
pub enum SigningKeyCommand {
    /// Create the secret with a first key set (a current and a standby key) if it does not
    /// exist, and publish its public keys.
    Create,
    /// One rotation through the four steps of the rotation function: the standby signs, the
    /// current key becomes previous, a fresh standby is published.
    Rotate(RotateArgs),
    /// The keys' kids, states and ages (never private material), an unfinished rotation
    /// holding AWSPENDING if there is one, and the platform's signing-key audit events.
    Show,
    /// Discard an unfinished rotation that holds AWSPENDING (it blocks every later rotation):
    /// removes the label from that version, republishes the keys that sign, audited.
    Repair(RepairArgs),
}

#[derive(Args, Debug)]
pub struct RepairArgs {
    /// The unfinished rotation's version, as `signing-key show` reports it (a rotation begun
    /// since is never discarded by mistake).
    #[arg(long)]
    pub version: String,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// Promote a standby younger than 12 minutes (development and tests; logged).
    #[arg(long, conflicts_with = "emergency")]
    pub force: bool,
    /// A leaked private key: retire the current key at once. Tokens it signed stop verifying.
    #[arg(long)]
    pub emergency: bool,
}

#[derive(Subcommand, Debug)]
pub enum CustomersCommand {
    /// Create a customer with its primary (spendable) and progression token keys.
    Create(CustomerArgs),
}

#[derive(Args, Debug)]
pub struct CustomerArgs {
    #[arg(long)]
    pub customer: CustomerId,
    #[arg(long)]
    pub primary_token: TokenKey,
    #[arg(long)]
    pub progression_token: TokenKey,
}

#[derive(Subcommand, Debug)]
pub enum SessionsCommand {
    /// Revoke every session matching one subject, issued until now (audited).
    Revoke(SessionsRevokeArgs),
}

#[derive(Args, Debug)]
#[group(id = "subject", required = true, multiple = false, args = ["user", "buddy", "key_prefix"])]
pub struct SessionsRevokeArgs {
    #[arg(long)]
    pub customer: CustomerId,
    #[arg(long)]
    pub env: Environment,
    #[arg(long)]
    pub user: Option<hatched::domain::UserId>,
    #[arg(long)]
    pub buddy: Option<BuddyId>,
    #[arg(long)]
    pub key_prefix: Option<keys::KeyPrefixArg>,
}

#[derive(Subcommand, Debug)]
pub enum BuddiesCommand {
    /// Create a buddy in one environment of a customer.
    Create(BuddyArgs),
}

#[derive(Args, Debug)]
pub struct BuddyArgs {
    #[arg(long)]
    pub customer: CustomerId,
    #[arg(long)]
    pub env: Environment,
    #[arg(long)]
    pub buddy: BuddyId,
}

/// What a command printed, in both forms.
#[derive(Debug, Clone)]
pub struct Output {
    pub json: Value,
    pub text: String,
}

impl Output {
    pub fn new(json: Value, text: impl Into<String>) -> Output {
        Output { json, text: text.into() }
    }
}

/// Runs one parsed command. `serve` is handled by the binary (it never returns).
pub async fn execute(app: &App, command: Command) -> Result<Output> {
    match command {
        Command::Table(TableCommand::Create) => {
            let outcome = app.store.create_table().await?;
            let created = outcome == hatched::store::TableSpec::Created;
            let text = if created { "table created" } else { "table already exists" };
            Ok(Output::new(
                json!({ "table": app.store.table(), "created": created }),
                format!("{}: {text}", app.store.table()),
            ))
        }
        Command::Customers(CustomersCommand::Create(args)) => create_customer(app, args).await,
        Command::Keys(cmd) => keys::execute(app, cmd).await,
        Command::Roles(cmd) => roles::execute(app, cmd).await,
        Command::Portal(args) => portal::mint(app, args).await,
        Command::Usage(args) => usage::month(app, args).await,
        Command::Buddies(BuddiesCommand::Create(args)) => create_buddy(app, args).await,
        Command::SigningKey(cmd) => signing_key(app, cmd).await,
        Command::Gates(cmd) => gates::gates(app, cmd).await,
        Command::Balances(cmd) => gates::balances(app, cmd).await,
        Command::SeedDemo(args) => seed::seed_demo(app, &args.customer).await,
        Command::Sessions(SessionsCommand::Revoke(args)) => revoke_sessions(app, args).await,
        Command::Serve(_) => bail!("serve runs from the hatchctl binary"),
        Command::DynamodbModel(_) => bail!("dynamodb-model runs from the hatchctl binary"),
    }
}

pub(crate) async fn create_customer(app: &App, args: CustomerArgs) -> Result<Output> {
    if args.primary_token == args.progression_token {
        bail!("the primary and progression token keys must differ");
    }
    let customer = Customer {
        customer_id: args.customer,
        primary_token: args.primary_token,
        progression_token: args.progression_token,
        created_at: app.clock.now(),
    };
    match app.store.create_customer(&customer).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => {
            let existing = app.store.get_customer(&customer.customer_id).await?.context("customer vanished")?;
            if existing.primary_token != customer.primary_token
                || existing.progression_token != customer.progression_token
            {
                bail!("customer {} already exists with other token keys", customer.customer_id);
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Output::new(
        json!({ "customer_id": customer.customer_id, "primary_token": customer.primary_token, "progression_token": customer.progression_token }),
        format!(
            "customer {} (primary {}, progression {})",
            customer.customer_id, customer.primary_token, customer.progression_token
        ),
    ))
}

pub(crate) async fn create_buddy(app: &App, args: BuddyArgs) -> Result<Output> {
    require_customer(app, &args.customer).await?;
    let created = match app.store.create_buddy(&args.customer, args.env, &args.buddy, app.clock.now()).await {
        Ok(()) => true,
        Err(StoreError::AlreadyExists) => false,
        Err(e) => return Err(e.into()),
    };
    Ok(Output::new(
        json!({ "customer_id": args.customer, "environment": args.env, "buddy_id": args.buddy, "created": created }),
        format!(
            "buddy {} ({}, {}){}",
            args.buddy,
            args.customer,
            args.env,
            if created { "" } else { " already existed" }
        ),
    ))
}

async fn signing_key(app: &App, cmd: SigningKeyCommand) -> Result<Output> {
    use hatched::domain::signing_keys::RotationMode;
    let keys_text = |keys: &[hatched::rotation::KeyView]| -> String {
        keys.iter()
            .map(|k| {
                let age = k.published_secs_ago.map_or("unpublished".to_owned(), |s| format!("published {s} s ago"));
                format!("  {} {} ({age})", k.kid, k.state)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    match cmd {
        SigningKeyCommand::Create => {
            let created = app.rotation.create_first().await?;
            let (kid, keys) = app.rotation.show().await?;
            let text = if created { "signing key set created" } else { "signing secret already exists" };
            Ok(Output::new(
                json!({ "created": created, "kid": kid, "keys": keys }),
                format!("{text}; current kid {kid}\n{}", keys_text(&keys)),
            ))
        }
        SigningKeyCommand::Rotate(args) => {
            let mode = match (args.force, args.emergency) {
                (_, true) => RotationMode::Emergency,
                (true, false) => RotationMode::Force,
                (false, false) => RotationMode::Scheduled,
            };
            let rotated = app.rotation.rotate(mode).await?;
            let previous: Vec<&str> = rotated
                .keys
                .iter()
                .filter(|k| k.state == hatched::domain::signing_keys::KeyState::Previous)
                .map(|k| k.kid.as_str())
                .collect();
            let text = format!("{}; current kid {}\n{}", rotated.outcome, rotated.kid, keys_text(&rotated.keys));
            Ok(Output::new(
                json!({ "kid": rotated.kid, "previous_kids": previous, "outcome": rotated.outcome, "keys": rotated.keys }),
                text,
            ))
        }
        SigningKeyCommand::Show => {
            let (kid, keys) = app.rotation.show().await?;
            let pending = app.rotation.pending().await?;
            let events = app.rotation.audit(10).await?;
            let mut text = format!("current kid {kid}\n{}", keys_text(&keys));
            if let Some(p) = &pending {
                let how = if p.resumable {
                    "retrying its steps may finish it"
                } else {
                    "it can never finish (AWSCURRENT moved on, or it records no source version)"
                };
                text.push_str(&format!(
                    "\nunfinished rotation {} holds AWSPENDING and blocks every later rotation; {how}. \
                     To discard it: hatchctl signing-key repair --version {}",
                    p.version, p.version
                ));
            }
            let audit: Vec<Value> = events
                .iter()
                .map(|e| {
                    json!({ "id": e.id, "time": e.time.rfc3339(), "actor": e.actor, "action": e.action,
                            "target": e.target, "changes": e.changes })
                })
                .collect();
            for e in &events {
                text.push_str(&format!("\n{} {} by {}", e.time.rfc3339(), e.action, e.actor));
            }
            Ok(Output::new(json!({ "kid": kid, "keys": keys, "pending": pending, "audit": audit }), text))
        }
        SigningKeyCommand::Repair(args) => {
            let by = hatched::domain::audit::Actor::operator();
            let repaired = app.rotation.repair(&args.version, &by).await?;
            let (kid, keys) = app.rotation.show().await?;
            Ok(Output::new(
                json!({ "discarded": repaired.discarded, "event_id": repaired.event_id, "kid": kid, "keys": keys }),
                format!(
                    "rotation {} discarded (audit event {}); current kid {kid}\n{}",
                    repaired.discarded,
                    repaired.event_id,
                    keys_text(&keys)
                ),
            ))
        }
    }
}

async fn revoke_sessions(app: &App, args: SessionsRevokeArgs) -> Result<Output> {
    use hatched::domain::token::SessionSubject;
    let subject = match (args.user, args.buddy, args.key_prefix) {
        (Some(user), _, _) => SessionSubject::User(user),
        (_, Some(buddy), _) => SessionSubject::Buddy(buddy),
        (_, _, Some(prefix)) => SessionSubject::Key(prefix.0),
        _ => bail!("one of --user, --buddy, --key-prefix is required"),
    };
    require_customer(app, &args.customer).await?;
    let by = hatched::keys::Manager::operator();
    let before = app.keys.revoke_sessions(&args.customer, args.env, &subject, &by).await?.rfc3339();
    Ok(Output::new(
        json!({ "revoked_before": before, "match": { subject.field(): subject.value() } }),
        format!("sessions of {} {} issued until {before} are revoked", subject.field(), subject.value()),
    ))
}

pub(crate) async fn require_customer(app: &App, id: &CustomerId) -> Result<Customer> {
    app.store
        .get_customer(id)
        .await?
        .with_context(|| format!("no customer {id}: create it with `hatchctl customers create`"))
}

/// Parses and runs a command line (without the program name), as tests do.
pub async fn run_args(app: &App, args: &[&str]) -> Result<Output> {
    let cli = Cli::try_parse_from(std::iter::once("hatchctl").chain(args.iter().copied()))?;
    execute(app, cli.command).await
}
