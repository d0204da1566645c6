//! Machines, their slots and the SKUs: what buyers see (machines that belong to a seller, slots
//! that still hold something) and what sellers and operators manage.

use aggregate_pay::Fen;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, VendingDb, corrupt, fen, fen_column};

/// A machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// Its code.
    pub inner_code: String,
    /// Its name.
    pub name: String,
    /// Where it stands.
    pub address: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// In service or not.
    pub status: MachineStatus,
    /// The seller it belongs to; a machine that belongs to nobody sells nothing.
    pub owner: Option<String>,
    /// Whether it signs its messages (the secret itself never leaves the database layer).
    pub signed: bool,
}

/// A machine to add.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMachine {
    /// Its code (letters, digits, `-` and `_`: it is part of MQTT topics).
    pub inner_code: String,
    /// Its name.
    pub name: String,
    /// Where it stands.
    pub address: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// Its seller.
    pub owner: Option<String>,
}

/// Whether a machine takes orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MachineStatus {
    /// In service.
    Online,
    /// Out of service.
    Offline,
}

impl MachineStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineStatus::Online => "ONLINE",
            MachineStatus::Offline => "OFFLINE",
        }
    }

    /// The status stored as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [MachineStatus::Online, MachineStatus::Offline]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// A SKU's row in one slot (the query result the buyer's SKU list is built from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSku {
    /// The slot.
    pub slot_no: String,
    /// The SKU.
    pub sku_id: i64,
    /// Its name.
    pub name: String,
    /// Its image.
    pub image: String,
    /// Its unit.
    pub unit: String,
    /// The slot's price.
    pub price: Fen,
    /// Items left in the slot.
    pub capacity: i64,
}

/// A slot as its seller manages it (sold out or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slot {
    /// The slot.
    pub slot_no: String,
    /// The SKU it holds.
    pub sku_id: i64,
    /// The SKU's name.
    pub sku_name: String,
    /// Its price.
    pub price: Fen,
    /// Items left.
    pub capacity: i64,
}

/// Whether `code` can be a machine code (it is part of MQTT topics and URLs).
pub fn valid_inner_code(code: &str) -> bool {
    (1..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

const MACHINE_COLUMNS: &str = "inner_code, name, address, lat, lng, status, owner, secret";

fn machine_from(r: &AnyRow) -> DbResult<Machine> {
    let status: String = r.try_get("status")?;
    let secret: Option<String> = r.try_get("secret")?;
    Ok(Machine {
        inner_code: r.try_get("inner_code")?,
        name: r.try_get("name")?,
        address: r.try_get("address")?,
        lat: r.try_get("lat")?,
        lng: r.try_get("lng")?,
        status: MachineStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown machine status {status:?}")))?,
        owner: r.try_get("owner")?,
        signed: secret.is_some(),
    })
}

fn slot_from(r: &AnyRow) -> DbResult<Slot> {
    Ok(Slot {
        slot_no: r.try_get("slot_no")?,
        sku_id: r.try_get("sku_id")?,
        sku_name: r.try_get("name")?,
        price: fen(r.try_get("price")?, "price")?,
        capacity: r.try_get("capacity")?,
    })
}

impl VendingDb {
    /// Every machine (operators).
    pub async fn machines(&self) -> DbResult<Vec<Machine>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {MACHINE_COLUMNS} FROM vm_machines ORDER BY inner_code"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(machine_from).collect()
    }

    /// The machines buyers may see: those that belong to a seller.
    pub async fn machines_for_sale(&self) -> DbResult<Vec<Machine>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {MACHINE_COLUMNS} FROM vm_machines WHERE owner IS NOT NULL ORDER BY inner_code"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(machine_from).collect()
    }

    /// A seller's machines.
    pub async fn machines_of(&self, owner: &str) -> DbResult<Vec<Machine>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {MACHINE_COLUMNS} FROM vm_machines WHERE owner = ? ORDER BY inner_code"
        )))
        .bind(owner.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(machine_from).collect()
    }

    /// One machine.
    pub async fn machine(&self, inner_code: &str) -> DbResult<Option<Machine>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {MACHINE_COLUMNS} FROM vm_machines WHERE inner_code = ?"
        )))
        .bind(inner_code.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(machine_from).transpose()
    }

    /// Adds a machine (no slots yet).
    pub async fn add_machine(&self, m: &NewMachine) -> DbResult<()> {
        sqlx::query(self.q(
            "INSERT INTO vm_machines (inner_code, name, address, lat, lng, status, owner) \
             VALUES (?, ?, ?, ?, ?, 'ONLINE', ?)",
        ))
        .bind(m.inner_code.clone())
        .bind(m.name.clone())
        .bind(m.address.clone())
        .bind(m.lat)
        .bind(m.lng)
        .bind(m.owner.clone())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives a machine to a seller; whether the machine exists.
    pub async fn assign_machine(&self, inner_code: &str, owner: &str) -> DbResult<bool> {
        let r = sqlx::query(self.q("UPDATE vm_machines SET owner = ? WHERE inner_code = ?"))
            .bind(owner.to_owned())
            .bind(inner_code.to_owned())
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Gives every machine that belongs to nobody to `owner` (demo mode: the demo seller).
    pub async fn give_unowned_machines(&self, owner: &str) -> DbResult<u64> {
        let r = sqlx::query(self.q("UPDATE vm_machines SET owner = ? WHERE owner IS NULL"))
            .bind(owner.to_owned())
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }

    /// Puts a machine in or out of service.
    pub async fn set_machine_status(
        &self,
        inner_code: &str,
        status: MachineStatus,
    ) -> DbResult<bool> {
        let r = sqlx::query(self.q("UPDATE vm_machines SET status = ? WHERE inner_code = ?"))
            .bind(status.as_str())
            .bind(inner_code.to_owned())
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The machine's secret, if it signs its messages.
    pub async fn machine_secret(&self, inner_code: &str) -> DbResult<Option<String>> {
        let row = sqlx::query(self.q("SELECT secret FROM vm_machines WHERE inner_code = ?"))
            .bind(inner_code.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => r.try_get("secret")?,
            None => None,
        })
    }

    /// Sets (or, with `None`, removes) the machine's secret; whether the machine exists.
    pub async fn set_machine_secret(
        &self,
        inner_code: &str,
        secret: Option<&str>,
    ) -> DbResult<bool> {
        let r = sqlx::query(self.q("UPDATE vm_machines SET secret = ? WHERE inner_code = ?"))
            .bind(secret.map(str::to_owned))
            .bind(inner_code.to_owned())
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The machine's slots that still hold something, with their SKUs: one query.
    pub async fn stocked_slots(&self, inner_code: &str) -> DbResult<Vec<SlotSku>> {
        let rows = sqlx::query(self.q(
            "SELECT s.slot_no, s.sku_id, k.name, k.image, k.unit, s.price, s.capacity \
             FROM vm_slots s JOIN vm_skus k ON k.sku_id = s.sku_id \
             WHERE s.inner_code = ? AND s.capacity > 0",
        ))
        .bind(inner_code.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SlotSku {
                    slot_no: r.try_get("slot_no")?,
                    sku_id: r.try_get("sku_id")?,
                    name: r.try_get("name")?,
                    image: r.try_get("image")?,
                    unit: r.try_get("unit")?,
                    price: fen(r.try_get("price")?, "price")?,
                    capacity: r.try_get("capacity")?,
                })
            })
            .collect()
    }

    /// Every slot of a machine, sold out or not.
    pub async fn slots(&self, inner_code: &str) -> DbResult<Vec<Slot>> {
        let rows = sqlx::query(
            self.q("SELECT s.slot_no, s.sku_id, k.name, s.price, s.capacity \
             FROM vm_slots s JOIN vm_skus k ON k.sku_id = s.sku_id \
             WHERE s.inner_code = ? ORDER BY s.slot_no"),
        )
        .bind(inner_code.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(slot_from).collect()
    }

    /// One slot.
    pub async fn slot(&self, inner_code: &str, slot_no: &str) -> DbResult<Option<Slot>> {
        let row = sqlx::query(
            self.q("SELECT s.slot_no, s.sku_id, k.name, s.price, s.capacity \
             FROM vm_slots s JOIN vm_skus k ON k.sku_id = s.sku_id \
             WHERE s.inner_code = ? AND s.slot_no = ?"),
        )
        .bind(inner_code.to_owned())
        .bind(slot_no.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(slot_from).transpose()
    }

    /// Sets a slot's SKU, price and count (creating the slot if the machine has none by that
    /// number).
    pub async fn set_slot(
        &self,
        inner_code: &str,
        slot_no: &str,
        sku_id: i64,
        price: Fen,
        capacity: i64,
    ) -> DbResult<()> {
        let r = sqlx::query(self.q(
            "UPDATE vm_slots SET sku_id = ?, price = ?, capacity = ? WHERE inner_code = ? AND slot_no = ?",
        ))
        .bind(sku_id)
        .bind(fen_column(price))
        .bind(capacity)
        .bind(inner_code.to_owned())
        .bind(slot_no.to_owned())
        .execute(self.pool())
        .await?;
        if r.rows_affected() == 0 {
            sqlx::query(self.q(
                "INSERT INTO vm_slots (inner_code, slot_no, sku_id, price, capacity) VALUES (?, ?, ?, ?, ?)",
            ))
            .bind(inner_code.to_owned())
            .bind(slot_no.to_owned())
            .bind(sku_id)
            .bind(fen_column(price))
            .bind(capacity)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    /// Items left in a machine's slot.
    pub async fn slot_capacity(&self, inner_code: &str, slot_no: &str) -> DbResult<Option<i64>> {
        Ok(self.slot(inner_code, slot_no).await?.map(|s| s.capacity))
    }

    /// Whether a SKU exists.
    pub async fn sku_exists(&self, sku_id: i64) -> DbResult<bool> {
        let row = sqlx::query(self.q("SELECT sku_id FROM vm_skus WHERE sku_id = ?"))
            .bind(sku_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Every SKU: id, name, unit.
    pub async fn skus(&self) -> DbResult<Vec<(i64, String, String)>> {
        let rows = sqlx::query(self.q("SELECT sku_id, name, unit FROM vm_skus ORDER BY sku_id"))
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("sku_id")?, r.try_get("name")?, r.try_get("unit")?)))
            .collect()
    }

    /// Adds a SKU to the catalogue.
    pub async fn add_sku(&self, sku_id: i64, name: &str, unit: &str, image: &str) -> DbResult<()> {
        sqlx::query(self.q("INSERT INTO vm_skus (sku_id, name, image, unit) VALUES (?, ?, ?, ?)"))
            .bind(sku_id)
            .bind(name.to_owned())
            .bind(image.to_owned())
            .bind(unit.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
