//! `hatchctl roles …`: a customer environment's roles, changed as `operator` (audited).

use anyhow::Result;
use clap::{Args, Subcommand};
use hatched::App;
use hatched::domain::role::{Role, RoleName};
use hatched::domain::{CustomerId, Environment};
use hatched::keys::Manager;
use hatched::roles::{RolePatch, RoleScope};
use serde_json::{Value, json};

use crate::Output;

#[derive(Subcommand, Debug)]
pub enum RolesCommand {
    /// Every role (built-in and custom) with its scopes and holder count.
    List(WhereArgs),
    /// Create a custom role.
    Create(CreateArgs),
    /// Change a custom role's description or scopes; every holder gets it on its next request.
    Update(UpdateArgs),
    /// Delete a custom role no unrevoked key holds.
    Delete(NameArgs),
}

#[derive(Args, Debug)]
pub struct WhereArgs {
    #[arg(long)]
    pub customer: CustomerId,
    #[arg(long)]
    pub env: Environment,
}

#[derive(Args, Debug)]
pub struct NameArgs {
    #[command(flatten)]
    pub at: WhereArgs,
    #[arg(long)]
    pub name: RoleName,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub at: WhereArgs,
    #[arg(long)]
    pub name: RoleName,
    #[arg(long)]
    pub description: Option<String>,
    /// Comma-separated scopes.
    #[arg(long, value_delimiter = ',', required = true)]
    pub scopes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub at: WhereArgs,
    #[arg(long)]
    pub name: RoleName,
    #[arg(long)]
    pub description: Option<String>,
    /// Comma-separated scopes, replacing the role's.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
}

fn scope(at: &WhereArgs) -> RoleScope<'_> {
    RoleScope { customer: &at.customer, env: at.env }
}

pub fn role_json(r: &Role) -> Value {
    json!({
        "name": r.name,
        "description": r.description,
        "scopes": r.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "built_in": r.built_in,
        "key_count": r.key_count,
    })
}

pub async fn execute(app: &App, cmd: RolesCommand) -> Result<Output> {
    let by = Manager::operator();
    let role = match cmd {
        RolesCommand::List(at) => {
            let roles = app.roles.list(scope(&at)).await?;
            let text = roles
                .iter()
                .map(|r| {
                    let scopes: Vec<&str> = r.scopes.iter().map(|s| s.as_str()).collect();
                    let kind = if r.built_in { "built-in" } else { "custom" };
                    format!("{:<20} {kind:<8} {:>5} keys  {}", r.name, r.key_count, scopes.join(" "))
                })
                .collect::<Vec<_>>()
                .join("\n");
            return Ok(Output::new(json!({ "roles": roles.iter().map(role_json).collect::<Vec<_>>() }), text));
        }
        RolesCommand::Create(a) => app.roles.create(scope(&a.at), a.name, a.description, &a.scopes, &by).await?,
        RolesCommand::Update(a) => {
            let patch = RolePatch { description: a.description.map(Some), scopes: a.scopes };
            app.roles.update(scope(&a.at), &a.name, &patch, &by).await?
        }
        RolesCommand::Delete(a) => {
            let gone = app.roles.delete(scope(&a.at), &a.name, &by).await?;
            return Ok(Output::new(
                json!({ "name": gone.name, "deleted": true }),
                format!("role {} deleted", gone.name),
            ));
        }
    };
    Ok(Output::new(role_json(&role), format!("role {}: {}", role.name, role_json(&role)["scopes"])))
}
