//! Values every instance must share, kept in the database: the first instance to need one
//! writes it, every other instance reads that one (a race is settled by the primary key).

use aggregate_pay::StoreError;
use sqlx::Row;

use super::{DbResult, VendingDb};

impl VendingDb {
    /// The setting `name`, written as `make()` if nobody wrote it yet; every caller gets the
    /// same value.
    pub async fn shared_setting(
        &self,
        name: &str,
        make: impl FnOnce() -> DbResult<String>,
    ) -> DbResult<String> {
        if let Some(value) = self.setting(name).await? {
            return Ok(value);
        }
        let inserted = sqlx::query(self.q("INSERT INTO vm_settings (name, value) VALUES (?, ?)"))
            .bind(name.to_owned())
            .bind(make()?)
            .execute(self.pool())
            .await;
        match inserted {
            // Another instance wrote it first: theirs is the one.
            Ok(_) | Err(sqlx::Error::Database(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.setting(name).await?.ok_or_else(|| {
            StoreError::Other(format!("the shared setting {name} could not be written"))
        })
    }

    async fn setting(&self, name: &str) -> DbResult<Option<String>> {
        let row = sqlx::query(self.q("SELECT value FROM vm_settings WHERE name = ?"))
            .bind(name.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("value")?),
            None => None,
        })
    }
}
