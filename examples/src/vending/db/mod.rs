//! The vending tables — machines (with their owner and secret), SKUs, slots, orders, sellers,
//! the audit of sellers' actions, shared settings — next to `aggregate-pay`'s payments in one
//! database, with embedded migrations (`schema`). Order state changes are compare-and-set on the
//! status, so a duplicate event or a race changes nothing.
//!
//! - `machines` — machines, slots and SKUs: what buyers see, what sellers manage.
//! - `orders` — orders and their compare-and-set steps.
//! - `sellers` — seller accounts and the audit of their actions.
//! - `complaints` — payers' complaints (WeChat Pay), each beside its order and seller.
//! - `seller_wechat` — sellers' bound WeChat and the QR scans that bind it or log in.
//! - `settings` — values every instance shares (the session secret).

mod complaints;
mod machines;
mod orders;
mod schema;
mod seller_wechat;
mod sellers;
mod settings;

pub use complaints::StoredComplaint;
pub use machines::{Machine, MachineStatus, NewMachine, Slot, SlotSku, valid_inner_code};
pub use orders::{BuyerApp, Order, OrderStatus, Stamp};
pub use seller_wechat::{ScanPurpose, ScanStatus, SellerScan};
pub use sellers::{AuditEntry, Seller, valid_login};

use aggregate_pay::store::SqlStore;
use aggregate_pay::{Fen, StoreError};
use sqlx::AnyPool;

/// What a vending query returns.
pub type DbResult<T> = Result<T, StoreError>;

/// A stored value that does not read back.
fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// An amount stored as a BIGINT of fen.
fn fen(v: i64, what: &str) -> DbResult<Fen> {
    u64::try_from(v)
        .map(Fen::new)
        .map_err(|_| corrupt(format!("negative {what} in the database")))
}

/// An amount to store.
pub fn fen_column(f: Fen) -> i64 {
    i64::try_from(f.as_u64()).unwrap_or(i64::MAX)
}

/// The vending database.
#[derive(Debug, Clone)]
pub struct VendingDb {
    store: SqlStore,
}

impl VendingDb {
    /// The vending tables next to `store`'s, migrated (and seeded on first start).
    pub async fn new(store: SqlStore) -> DbResult<Self> {
        store
            .migrate_tables("vending_migrations", schema::MIGRATIONS)
            .await?;
        Ok(VendingDb { store })
    }

    fn q(&self, sql: &str) -> sqlx::AssertSqlSafe<String> {
        self.store.query_text(sql)
    }

    fn pool(&self) -> &AnyPool {
        self.store.pool()
    }
}
