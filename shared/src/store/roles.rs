//! Roles: `ROLE#<customer>#<env>` / `R#<name>`, one partition per customer environment (listing
//! its roles is one query). A custom role's item holds its scopes, version and holder counts;
//! a built-in role's item only its holder counts. Counts change in the transactions that change
//! keys (`Store::commit_keys`), so they are exact; a role change is its item and its audit
//! event in one transaction, and no key is touched.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};

use super::audit::audit_puts;
use super::items::RoleItem;
use super::transaction::Transaction;
use super::{Item, Store, StoreError, TxError, build_err, from_item, n, partition, s, to_item};
use crate::domain::audit::AuditEvent;
use crate::domain::role::{Role, RoleCount, RoleName};
use crate::domain::{CustomerId, Environment};

fn roles_pk(customer: &CustomerId, env: Environment) -> String {
    format!("{}{}#{}", partition::ROLE, customer.as_str(), env.as_str())
}

fn role_sk(name: &RoleName) -> String {
    format!("R#{name}")
}

fn role_key(customer: &CustomerId, env: Environment, name: &RoleName) -> Item {
    Item::from([("pk".to_owned(), s(roles_pk(customer, env))), ("sk".to_owned(), s(role_sk(name)))])
}

impl Store {
    /// Every role item of a customer environment (custom roles, built-in counts), consistent.
    pub async fn list_role_items(&self, customer: &CustomerId, env: Environment) -> Result<Vec<Role>, StoreError> {
        let items = self.query_prefix("list_roles", roles_pk(customer, env), "R#").await?;
        items.into_iter().map(|i| from_item::<RoleItem>(i).map(RoleItem::role)).collect()
    }

    /// The role items of these names that exist (consistent: a change is seen at once), read
    /// together: one consistent `GetItem` each, all at once (a key holds at most 20 roles). Not
    /// a `BatchGetItem`: every keyed function already links `GetItem`, and the batch operation's
    /// client code would put the largest functions over their 6 MiB budget (BENCHMARKS.md).
    pub async fn roles_by_name(
        &self,
        customer: &CustomerId,
        env: Environment,
        names: &[RoleName],
    ) -> Result<Vec<Role>, StoreError> {
        let reads = names.iter().map(|name| async move {
            self.get_consistent::<RoleItem>("roles_by_name", roles_pk(customer, env), &role_sk(name)).await
        });
        let found = futures::future::try_join_all(reads).await?;
        Ok(found.into_iter().flatten().map(RoleItem::role).collect())
    }

    /// Creates a custom role with its audit event. `AlreadyExists`: the name is taken.
    pub async fn create_role(
        &self,
        customer: &CustomerId,
        env: Environment,
        role: &Role,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.transaction();
        let item = to_item(&RoleItem::new(roles_pk(customer, env), role_sk(&role.name), role))?;
        let claim = self.put_new_in("create_role", &mut tx, item)?;
        for put in audit_puts(self, event)? {
            tx.push(put);
        }
        match self.commit("create_role", tx).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(failed)) if failed.at(claim) => Err(StoreError::AlreadyExists),
            Err(TxError::Cancelled(_)) => Err(StoreError::Conflict),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// Changes a custom role's description and scopes over the version it was decided on (its
    /// counts stay as concurrent key changes leave them). When the new scopes include one a
    /// publishable key may not hold, the role must still have no publishable holder.
    /// `Conflict`: decide again.
    pub async fn update_role(
        &self,
        customer: &CustomerId,
        env: Environment,
        old: &Role,
        new: &Role,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let secret_only = new.scopes.iter().any(|s| s.secret_only());
        let condition = if secret_only {
            "#version = :version AND (attribute_not_exists(publishable_count) OR publishable_count = :zero)"
        } else {
            "#version = :version"
        };
        let mut update = Update::builder()
            .table_name(self.table())
            .set_key(Some(role_key(customer, env, &old.name)))
            .update_expression("SET scopes = :scopes, #version = :next REMOVE description")
            .condition_expression(condition)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", n(old.version as i64))
            .expression_attribute_values(":next", n(new.version as i64))
            .expression_attribute_values(
                ":scopes",
                AttributeValue::L(new.scopes.iter().map(|s| super::s(s.as_str())).collect()),
            );
        if secret_only {
            update = update.expression_attribute_values(":zero", n(0));
        }
        if let Some(description) = &new.description {
            update = update
                .update_expression("SET scopes = :scopes, #version = :next, description = :description")
                .expression_attribute_values(":description", s(description.clone()));
        }
        let mut tx = self.transaction();
        tx.update(update.build().map_err(build_err("update_role"))?);
        self.commit_with_event("update_role", tx, event).await
    }

    /// Deletes a custom role over the version it was decided on, only while no unrevoked key
    /// holds it. `Conflict`: decide again (the read tells whether it is now in use).
    pub async fn delete_role(
        &self,
        customer: &CustomerId,
        env: Environment,
        old: &Role,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(role_key(customer, env, &old.name)))
            .condition_expression("#version = :version AND (attribute_not_exists(key_count) OR key_count = :zero)")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", n(old.version as i64))
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(build_err("delete_role"))?;
        let mut tx = self.transaction();
        tx.push(TransactWriteItem::builder().delete(delete).build());
        self.commit_with_event("delete_role", tx, event).await
    }

    async fn commit_with_event(
        &self,
        op: &'static str,
        mut tx: Transaction,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        for put in audit_puts(self, event)? {
            tx.push(put);
        }
        match self.commit(op, tx).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(_)) => Err(StoreError::Conflict),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// The holder-count updates of a key change, for its transaction: a custom role newly
    /// assigned must still be at the version the change was decided on, any other custom role
    /// must still exist; a built-in role's counts item is created by the first `ADD`.
    pub(crate) fn role_counts_in(
        &self,
        op: &'static str,
        tx: &mut Transaction,
        customer: &CustomerId,
        env: Environment,
        counts: &[RoleCount],
    ) -> Result<(), StoreError> {
        for count in counts {
            let mut update = Update::builder()
                .table_name(self.table())
                .set_key(Some(role_key(customer, env, &count.name)))
                .update_expression("SET #name = :name ADD key_count :keys, publishable_count :publishable")
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(count.name.as_str()))
                .expression_attribute_values(":keys", n(count.keys))
                .expression_attribute_values(":publishable", n(count.publishable));
            update = match (count.name.built_in(), count.decided_at) {
                (Some(_), _) => update,
                (None, Some(version)) => update
                    .condition_expression("#version = :version")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":version", n(version as i64)),
                (None, None) => update.condition_expression("attribute_exists(pk)"),
            };
            tx.update(update.build().map_err(build_err(op))?);
        }
        Ok(())
    }
}
