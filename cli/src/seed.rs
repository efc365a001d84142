//! The one seed fixture: the demo world `scripts/dev` serves (through `hatchctl seed-demo`),
//! the cold-start bench measures, and the tests build on. Typed calls into the same command
//! code an operator runs, never argument strings.

use anyhow::{Context, Result};
use hatched::App;
use hatched::domain::{BuddyId, CustomerId, Environment, GateKey, KeyType, Tier, TokenKey};
use hatched::keys::{Issued, KeyOptions};
use serde::Serialize;
use serde_json::{Value, json};

use crate::gates::{BalancesCommand, CreditArgs, GateArgs, GatesCommand};
use crate::{BuddyArgs, CustomerArgs};

/// Every customer of the fixture spends `coins` and progresses in `xp`.
pub const PRIMARY_TOKEN: &str = "coins";
pub const PROGRESSION_TOKEN: &str = "xp";
/// The buddy of the demo world, in both environments.
pub const BUDDY: &str = "buddy_1";
/// The demo world's gates: (gate key, cost, label).
pub const GATES: &[(&str, i64, &str)] = &[("dark_mode", 25, "Dark mode"), ("golden_hat", 80, "Golden hat")];

/// A customer of the fixture and typed ways to give it things.
#[derive(Clone)]
pub struct Seed {
    pub app: App,
    pub customer: CustomerId,
}

fn id<T: std::str::FromStr>(text: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    text.parse().unwrap_or_else(|e| panic!("fixture id {text:?}: {e:?}"))
}

impl Seed {
    /// Creates the customer (idempotent) with token keys `coins` and `xp`.
    pub async fn customer(app: &App, customer: &str) -> Result<Seed> {
        let customer: CustomerId = customer.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let args = CustomerArgs {
            customer: customer.clone(),
            primary_token: id(PRIMARY_TOKEN),
            progression_token: id(PROGRESSION_TOKEN),
        };
        crate::create_customer(app, args).await?;
        Ok(Seed { app: app.clone(), customer })
    }

    pub async fn buddy(&self, env: Environment, buddy: &str) -> Result<()> {
        crate::create_buddy(&self.app, self.buddy_args(env, buddy)?).await.map(drop)
    }

    /// A gate spending the primary token.
    pub async fn gate(&self, gate: &str, cost: i64, metadata: Option<&Value>) -> Result<Value> {
        let args = GateArgs {
            customer: self.customer.clone(),
            gate: gate.parse::<GateKey>().map_err(|e| anyhow::anyhow!("{e}"))?,
            token: id(PRIMARY_TOKEN),
            cost,
            metadata: metadata.map(Value::to_string),
        };
        crate::gates::gates(&self.app, GatesCommand::Create(args)).await.map(|o| o.json)
    }

    /// Credits `amount` of `token` (`coins` or `xp`) to a buddy.
    pub async fn credit(&self, env: Environment, buddy: &str, token: &str, amount: i64) -> Result<Value> {
        let args = CreditArgs {
            buddy: self.buddy_args(env, buddy)?,
            token: token.parse::<TokenKey>().map_err(|e| anyhow::anyhow!("{e}"))?,
            amount,
        };
        crate::gates::balances(&self.app, BalancesCommand::Credit(args)).await.map(|o| o.json)
    }

    pub async fn key(&self, key_type: KeyType, env: Environment, options: KeyOptions) -> Result<Issued> {
        Ok(self.app.keys.issue_key(&self.customer, key_type, env, options, &hatched::keys::Manager::operator()).await?)
    }

    fn buddy_args(&self, env: Environment, buddy: &str) -> Result<BuddyArgs> {
        Ok(BuddyArgs {
            customer: self.customer.clone(),
            env,
            buddy: buddy.parse::<BuddyId>().map_err(|e| anyhow::anyhow!("{e}"))?,
        })
    }
}

/// What the demo world hands out: the plaintext keys, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct Demo {
    pub customer_id: String,
    pub buddy_id: String,
    pub live_secret_key: String,
    pub test_secret_key: String,
    pub publishable_key: String,
}

/// The demo world for `customer`: `buddy_1` in live (100 coins) and test (1000 coins), the
/// gates `dark_mode` (25) and `golden_hat` (80), an enterprise live secret key, a test secret
/// key and a live publishable key that may unlock. Assumes the table and signing key exist.
pub async fn demo(app: &App, customer: &str) -> Result<Demo> {
    let seed = Seed::customer(app, customer).await?;
    for env in [Environment::Live, Environment::Test] {
        seed.buddy(env, BUDDY).await?;
    }
    for (gate, cost, label) in GATES {
        seed.gate(gate, *cost, Some(&json!({ "label": label }))).await?;
    }
    seed.credit(Environment::Live, BUDDY, PRIMARY_TOKEN, 100).await?;
    seed.credit(Environment::Test, BUDDY, PRIMARY_TOKEN, 1000).await?;
    let labelled = |label: &str, tier| KeyOptions { tier: Some(tier), label: Some(label.into()), ..Default::default() };
    let live = seed.key(KeyType::Secret, Environment::Live, labelled("demo-live", Tier::Enterprise)).await?;
    let test = seed.key(KeyType::Secret, Environment::Test, labelled("demo-test", Tier::Free)).await?;
    let browser = KeyOptions {
        scopes: Some(
            ["read:buddies", "embed_tokens:create", "write:unlocks", "read:operations"].map(String::from).into(),
        ),
        ..labelled("demo-browser", Tier::Free)
    };
    let pk = seed.key(KeyType::Publishable, Environment::Live, browser).await?;
    Ok(Demo {
        customer_id: seed.customer.to_string(),
        buddy_id: BUDDY.to_owned(),
        live_secret_key: live.key.expose().to_owned(),
        test_secret_key: test.key.expose().to_owned(),
        publishable_key: pk.key.expose().to_owned(),
    })
}

/// `hatchctl seed-demo`: table, signing key and the demo world, as JSON.
pub async fn seed_demo(app: &App, customer: &str) -> Result<crate::Output> {
    app.store.create_table().await?;
    app.rotation.create_first().await?;
    app.sealer.create_secret().await?;
    let demo = demo(app, customer).await.context("seeding the demo world")?;
    let json = serde_json::to_value(&demo)?;
    Ok(crate::Output::new(json.clone(), serde_json::to_string_pretty(&json)?))
}
