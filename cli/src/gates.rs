//! `hatchctl gates …` and `hatchctl balances …`.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hatched::App;
use hatched::domain::gate::BuddyRef;
use hatched::domain::gate::{Gate, TokenSlots};
use hatched::domain::{CustomerId, GateKey, TokenKey};
use hatched::store::StoreError;
use serde_json::{Value, json};

use crate::{BuddyArgs, Output, require_customer};

#[derive(Subcommand, Debug)]
pub enum GatesCommand {
    /// Create a gate that spends the customer's primary token.
    Create(GateArgs),
    /// List a customer's gates.
    List(CustomerArg),
}

#[derive(Args, Debug)]
pub struct GateArgs {
    #[arg(long)]
    pub customer: CustomerId,
    #[arg(long)]
    pub gate: GateKey,
    #[arg(long)]
    pub token: TokenKey,
    /// A positive integer.
    #[arg(long, allow_negative_numbers = true)]
    pub cost: i64,
    /// A JSON object returned with the gate and snapshotted into each unlock.
    #[arg(long)]
    pub metadata: Option<String>,
}

#[derive(Args, Debug)]
pub struct CustomerArg {
    #[arg(long)]
    pub customer: CustomerId,
}

#[derive(Subcommand, Debug)]
pub enum BalancesCommand {
    /// Add tokens to a buddy's balance.
    Credit(CreditArgs),
    /// A buddy's balances, unlocks and ledger entries.
    Show(BuddyArgs),
}

#[derive(Args, Debug)]
pub struct CreditArgs {
    #[command(flatten)]
    pub buddy: BuddyArgs,
    #[arg(long)]
    pub token: TokenKey,
    /// A positive integer.
    #[arg(long, allow_negative_numbers = true)]
    pub amount: i64,
}

impl BuddyArgs {
    fn to_ref(&self) -> BuddyRef {
        BuddyRef { customer: self.customer.clone(), env: self.env, buddy: self.buddy.clone() }
    }
}

pub async fn gates(app: &App, cmd: GatesCommand) -> Result<Output> {
    match cmd {
        GatesCommand::Create(args) => {
            let metadata: Option<Value> = args
                .metadata
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .context("--metadata is not valid JSON")?;
            let customer = require_customer(app, &args.customer).await?;
            let slots = TokenSlots { primary: customer.primary_token, progression: customer.progression_token };
            let gate = Gate::new(args.customer, args.gate, args.token, args.cost, metadata, &slots)?;
            match app.store.create_gate(&gate).await {
                Ok(()) => {}
                Err(StoreError::AlreadyExists) => {
                    bail!("gate {} already exists for {}", gate.gate_key, gate.customer_id)
                }
                Err(e) => return Err(e.into()),
            }
            Ok(Output::new(
                json!({ "gate_key": gate.gate_key, "token_key": gate.token_key, "cost": gate.cost, "metadata": gate.metadata }),
                format!("gate {} costs {} {}", gate.gate_key, gate.cost, gate.token_key),
            ))
        }
        GatesCommand::List(args) => {
            require_customer(app, &args.customer).await?;
            let gates = app.store.list_gates(&args.customer).await?;
            let text = gates
                .iter()
                .map(|g| {
                    format!(
                        "{:<24} {:>8} {:<16} {}",
                        g.gate_key.as_str(),
                        g.cost,
                        g.token_key.as_str(),
                        g.metadata.clone().unwrap_or(Value::Null)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            let rows: Vec<Value> = gates
                .into_iter()
                .map(|g| json!({ "gate_key": g.gate_key, "token_key": g.token_key, "cost": g.cost, "metadata": g.metadata }))
                .collect();
            Ok(Output::new(json!({ "gates": rows }), if text.is_empty() { "no gates".into() } else { text }))
        }
    }
}

pub async fn balances(app: &App, cmd: BalancesCommand) -> Result<Output> {
    match cmd {
        BalancesCommand::Credit(args) => {
            if args.amount <= 0 {
                bail!("--amount must be a positive integer");
            }
            let customer = require_customer(app, &args.buddy.customer).await?;
            if args.token != customer.primary_token && args.token != customer.progression_token {
                bail!(
                    "{} is neither {}'s primary ({}) nor progression ({}) token",
                    args.token,
                    customer.customer_id,
                    customer.primary_token,
                    customer.progression_token
                );
            }
            let buddy = args.buddy.to_ref();
            match app.store.credit(&buddy, &args.token, args.amount).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => bail!(
                    "no buddy {} ({}, {}): create it with `hatchctl buddies create`",
                    buddy.buddy,
                    buddy.customer,
                    buddy.env
                ),
                Err(e) => return Err(e.into()),
            }
            let balance = app
                .store
                .list_balances(&buddy)
                .await?
                .into_iter()
                .find(|(t, _)| *t == args.token)
                .map_or(0, |(_, a)| a);
            Ok(Output::new(
                json!({ "buddy_id": buddy.buddy, "token_key": args.token, "credited": args.amount, "amount": balance }),
                format!("{} {}: +{} → {}", buddy.buddy, args.token, args.amount, balance),
            ))
        }
        BalancesCommand::Show(args) => {
            let buddy = args.to_ref();
            if !app.store.buddy_exists(&buddy.customer, buddy.env, &buddy.buddy).await? {
                bail!("no buddy {} ({}, {})", buddy.buddy, buddy.customer, buddy.env);
            }
            let (balances, unlocks, ledger) = tokio::try_join!(
                app.store.list_balances(&buddy),
                app.store.list_unlocks(&buddy),
                app.store.list_ledger(&buddy)
            )?;
            let spent: i64 = ledger.iter().map(|e| e.amount).sum();
            let json = json!({
                "buddy_id": buddy.buddy, "environment": buddy.env,
                "balances": balances.iter().map(|(t, a)| json!({ "token_key": t, "amount": a })).collect::<Vec<_>>(),
                "unlocks": unlocks.iter().map(|u| json!({ "gate_key": u.gate_key, "unlocked_at": u.unlocked_at.rfc3339(), "cost": u.cost, "metadata": u.metadata })).collect::<Vec<_>>(),
                "ledger": ledger.iter().map(|e| json!({ "gate_key": e.gate_key, "token_key": e.token_key, "amount": e.amount, "at": e.at.rfc3339(), "request_id": e.request_id })).collect::<Vec<_>>(),
                "spent": spent,
            });
            let mut text = format!("buddy {} ({}, {})\nbalances:", buddy.buddy, buddy.customer, buddy.env);
            for (t, a) in &balances {
                text.push_str(&format!("\n  {t}: {a}"));
            }
            text.push_str("\nunlocks:");
            for u in &unlocks {
                text.push_str(&format!("\n  {} at {} for {}", u.gate_key, u.unlocked_at.rfc3339(), u.cost));
            }
            text.push_str(&format!("\nledger ({} entries, {spent} spent):", ledger.len()));
            for e in &ledger {
                text.push_str(&format!("\n  {} -{} {} ({})", e.at.rfc3339(), e.amount, e.token_key, e.gate_key));
            }
            Ok(Output::new(json, text))
        }
    }
}
