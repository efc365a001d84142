//! Customers (`CUS#<id>` / `CUSTOMER`) and buddies (`BDY#<cus>#<env>#<buddy>` / `BUDDY`).

use super::items::{BuddyItem, CustomerItem};
use super::{Store, StoreError, classify, s, to_item};
use crate::domain::gate::Customer;
use crate::domain::{BuddyId, CustomerId, Environment, UnixTime};

pub(crate) fn customer_pk(customer: &CustomerId) -> String {
    format!("{}{}", super::partition::CUSTOMER, customer.as_str())
}

/// Partition of everything a buddy owns in one environment.
pub(crate) fn buddy_pk(customer: &CustomerId, env: Environment, buddy: &BuddyId) -> String {
    format!("{}{}#{}#{}", super::partition::BUDDY, customer.as_str(), env.as_str(), buddy.as_str())
}

impl Store {
    /// Creates the customer; `AlreadyExists` if the id is taken.
    pub async fn create_customer(&self, customer: &Customer) -> Result<(), StoreError> {
        let item = to_item(&CustomerItem::new(customer_pk(&customer.customer_id), "CUSTOMER".into(), customer))?;
        self.put_new("create_customer", item).await
    }

    pub async fn get_customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        let item: Option<CustomerItem> = self.get_consistent("get_customer", customer_pk(id), "CUSTOMER").await?;
        Ok(item.map(CustomerItem::customer))
    }

    /// Creates the buddy; `AlreadyExists` if it is there.
    pub async fn create_buddy(
        &self,
        customer: &CustomerId,
        env: Environment,
        buddy: &BuddyId,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let item = to_item(&BuddyItem {
            pk: buddy_pk(customer, env, buddy),
            sk: "BUDDY".into(),
            customer_id: customer.clone(),
            environment: env,
            buddy_id: buddy.clone(),
            created_at: now,
        })?;
        self.put_new("create_buddy", item).await
    }

    /// Does the buddy exist in this customer's environment? (Consistent: a buddy created a
    /// moment ago must be usable at once.)
    pub async fn buddy_exists(
        &self,
        customer: &CustomerId,
        env: Environment,
        buddy: &BuddyId,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(buddy_pk(customer, env, buddy)))
            .key("sk", s("BUDDY"))
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("buddy_exists", e))?;
        Ok(out.item.is_some())
    }
}
