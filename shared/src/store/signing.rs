//! The published public signing keys (`SIGNING#JWKS` / `JWKS`): written by the rotation's
//! `setSecret` (and `hatchctl signing-key create`), read by `jwks` and `introspect-token`,
//! which thereby never need the signing secret.

use super::items::PublishedItem;
use super::{Store, StoreError, classify, to_item};
use crate::domain::signing_keys::PublishedKeys;

const SK: &str = "JWKS";

fn published_pk() -> String {
    format!("{}JWKS", super::partition::SIGNING)
}

impl Store {
    /// The published key set, if any (one consistent `GetItem`).
    pub async fn published_keys(&self) -> Result<Option<PublishedKeys>, StoreError> {
        let item: Option<PublishedItem> = self.get_consistent("published_keys", published_pk(), SK).await?;
        Ok(item.map(PublishedItem::keys))
    }

    /// Replaces the published key set (one `PutItem`).
    pub async fn publish_keys(&self, keys: &PublishedKeys) -> Result<(), StoreError> {
        let item = to_item(&PublishedItem::new(published_pk(), SK.to_owned(), keys))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify("publish_keys", e))?;
        Ok(())
    }
}
