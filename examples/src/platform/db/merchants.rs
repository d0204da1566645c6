//! Merchants: their credentials (secrets that never print), status, and the single-use
//! binding code that ties a merchant to a WeChat user.

use merchant_client::Secret;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, PlatformDb, corrupt, e, inserted};

/// A merchant. Its secrets are `Secret`s: `Debug` never shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    /// The app id (never changes).
    pub app_id: String,
    /// The name.
    pub name: String,
    /// The unified social credit code (unique).
    pub credit_code: String,
    /// Where callbacks go.
    pub notify_url: String,
    /// Whether it may use the open API.
    pub status: MerchantStatus,
    /// The current secret.
    pub secret: Secret,
    /// The salt.
    pub salt: Secret,
    /// The previous secret, valid until `previous_valid_until`.
    pub previous_secret: Option<Secret>,
    /// Unix seconds.
    pub previous_valid_until: Option<i64>,
    /// The bound WeChat openid.
    pub open_id: Option<String>,
    /// The scene of the binding QR code.
    pub bind_scene: Option<String>,
    /// What the binding QR code encodes.
    pub bind_qr_url: Option<String>,
    /// Partner mode: the merchant's WeChat Pay sub-merchant id under the platform's service
    /// provider account (unique: one merchant's).
    pub wechat_sub_mchid: Option<String>,
    /// Partner mode: the merchant's Alipay user id, once it authorized the platform's app
    /// (unique: one merchant's).
    pub alipay_user_id: Option<String>,
    /// Partner mode: the platform's fee for this merchant in basis points (the platform's
    /// default when `None`).
    pub fee_bps: Option<u32>,
}

/// Whether a merchant may use the open API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MerchantStatus {
    /// Yes.
    Active,
    /// No (the admin disabled it).
    Disabled,
}

impl MerchantStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantStatus::Active => "ACTIVE",
            MerchantStatus::Disabled => "DISABLED",
        }
    }

    /// The status stored as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [MerchantStatus::Active, MerchantStatus::Disabled]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

const MERCHANT_COLUMNS: &str = "app_id, name, credit_code, notify_url, status, secret, salt, previous_secret, \
     previous_valid_until, open_id, bind_scene, bind_qr_url, wechat_sub_mchid, fee_bps, alipay_user_id";

/// Partner mode on Alipay: the merchant's authorization of the platform's third-party app (its
/// user id, one merchant's only, and its `app_auth_token`), and the single-use state of an
/// authorization under way.
pub(super) const SCHEMA_V6: &str = "
ALTER TABLE merchants ADD COLUMN alipay_user_id VARCHAR(32);
ALTER TABLE merchants ADD COLUMN alipay_app_auth_token TEXT;
ALTER TABLE merchants ADD COLUMN alipay_auth_state VARCHAR(64);
ALTER TABLE merchants ADD COLUMN alipay_auth_expires_at BIGINT;
CREATE UNIQUE INDEX merchants_alipay_user_id ON merchants (alipay_user_id);
CREATE UNIQUE INDEX merchants_alipay_auth_state ON merchants (alipay_auth_state);
";

/// Partner mode: each merchant's WeChat Pay sub-merchant id (one merchant's only) and fee.
pub(super) const SCHEMA_V5: &str = "
ALTER TABLE merchants ADD COLUMN wechat_sub_mchid VARCHAR(32);
ALTER TABLE merchants ADD COLUMN fee_bps BIGINT;
CREATE UNIQUE INDEX merchants_wechat_sub_mchid ON merchants (wechat_sub_mchid);
";

/// Binding codes are single-use and short-lived: each records when it expires and when it was
/// used. Codes issued before (no expiry) no longer bind anyone.
pub(super) const SCHEMA_V4: &str = "
ALTER TABLE merchants ADD COLUMN bind_expires_at BIGINT;
ALTER TABLE merchants ADD COLUMN bind_used_at BIGINT;
";

/// Why a scan did not bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindRefused {
    /// No merchant has this code (never issued, or replaced by a newer one).
    Unknown,
    /// The code was scanned once already: single-use.
    Used,
    /// The code is past its time.
    Expired,
}

fn merchant_from(r: &AnyRow) -> DbResult<Merchant> {
    Ok(Merchant {
        app_id: r.try_get("app_id").map_err(e)?,
        name: r.try_get("name").map_err(e)?,
        credit_code: r.try_get("credit_code").map_err(e)?,
        notify_url: r.try_get("notify_url").map_err(e)?,
        status: {
            let status: String = r.try_get("status").map_err(e)?;
            MerchantStatus::parse(&status)
                .ok_or_else(|| corrupt(format!("unknown merchant status {status:?}")))?
        },
        secret: Secret::new(r.try_get::<String, _>("secret").map_err(e)?),
        salt: Secret::new(r.try_get::<String, _>("salt").map_err(e)?),
        previous_secret: r
            .try_get::<Option<String>, _>("previous_secret")
            .map_err(e)?
            .map(Secret::new),
        previous_valid_until: r.try_get("previous_valid_until").map_err(e)?,
        open_id: r.try_get("open_id").map_err(e)?,
        bind_scene: r.try_get("bind_scene").map_err(e)?,
        bind_qr_url: r.try_get("bind_qr_url").map_err(e)?,
        wechat_sub_mchid: r.try_get("wechat_sub_mchid").map_err(e)?,
        alipay_user_id: r.try_get("alipay_user_id").map_err(e)?,
        fee_bps: r
            .try_get::<Option<i64>, _>("fee_bps")
            .map_err(e)?
            .map(|b| u32::try_from(b).map_err(|_| corrupt(format!("fee_bps {b}"))))
            .transpose()?,
    })
}

impl PlatformDb {
    /// Inserts a merchant; `Ok(false)` if the credit code is taken.
    pub async fn insert_merchant(&self, m: &Merchant, now: i64) -> DbResult<bool> {
        let result = sqlx::query(self.q(&format!(
            "INSERT INTO merchants ({MERCHANT_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(m.app_id.clone())
        .bind(m.name.clone())
        .bind(m.credit_code.clone())
        .bind(m.notify_url.clone())
        .bind(m.status.as_str().to_owned())
        .bind(m.secret.expose().to_owned())
        .bind(m.salt.expose().to_owned())
        .bind(m.previous_secret.as_ref().map(|s| s.expose().to_owned()))
        .bind(m.previous_valid_until)
        .bind(m.open_id.clone())
        .bind(m.bind_scene.clone())
        .bind(m.bind_qr_url.clone())
        .bind(m.wechat_sub_mchid.clone())
        .bind(m.fee_bps.map(i64::from))
        .bind(m.alipay_user_id.clone())
        .bind(now)
        .execute(self.store.pool())
        .await;
        inserted(result)
    }

    async fn merchant_where(&self, column: &str, value: &str) -> DbResult<Option<Merchant>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {MERCHANT_COLUMNS} FROM merchants WHERE {column} = ?"
        )))
        .bind(value.to_owned())
        .fetch_optional(self.store.pool())
        .await
        .map_err(e)?;
        row.as_ref().map(merchant_from).transpose()
    }

    /// How many merchants are active, `except` one (the one about to change).
    pub async fn active_merchants(&self, except: Option<&str>) -> DbResult<i64> {
        let row = sqlx::query(
            self.q("SELECT COUNT(*) AS n FROM merchants WHERE status = ? AND app_id <> ?"),
        )
        .bind(MerchantStatus::Active.as_str().to_owned())
        .bind(except.unwrap_or_default().to_owned())
        .fetch_one(self.store.pool())
        .await
        .map_err(e)?;
        row.try_get::<i64, _>("n").map_err(e)
    }

    /// A merchant by app id.
    pub async fn merchant(&self, app_id: &str) -> DbResult<Option<Merchant>> {
        self.merchant_where("app_id", app_id).await
    }

    /// Partner mode: records the merchant's WeChat Pay sub-merchant id and fee; `Ok(false)` when
    /// another merchant has that sub-merchant id.
    pub async fn set_partner(
        &self,
        app_id: &str,
        wechat_sub_mchid: &str,
        fee_bps: Option<u32>,
    ) -> DbResult<bool> {
        let result = sqlx::query(
            self.q("UPDATE merchants SET wechat_sub_mchid = ?, fee_bps = ? WHERE app_id = ?"),
        )
        .bind(wechat_sub_mchid.to_owned())
        .bind(fee_bps.map(i64::from))
        .bind(app_id.to_owned())
        .execute(self.store.pool())
        .await;
        inserted(result)
    }

    /// Partner mode: an Alipay authorization of merchant `app_id` begins; `state` (random,
    /// single-use) comes back with the merchant until `expires_at`.
    pub async fn begin_alipay_authorization(
        &self,
        app_id: &str,
        state: &str,
        expires_at: i64,
    ) -> DbResult<()> {
        sqlx::query(self.q(
            "UPDATE merchants SET alipay_auth_state = ?, alipay_auth_expires_at = ? WHERE app_id = ?",
        ))
        .bind(state.to_owned())
        .bind(expires_at)
        .bind(app_id.to_owned())
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        Ok(())
    }

    /// The merchant an authorization `state` was issued to, if it is still valid at `now`; the
    /// state is used up either way.
    pub async fn take_alipay_state(&self, state: &str, now: i64) -> DbResult<Option<Merchant>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {MERCHANT_COLUMNS}, alipay_auth_expires_at FROM merchants WHERE alipay_auth_state = ?"
        )))
        .bind(state.to_owned())
        .fetch_optional(self.store.pool())
        .await
        .map_err(e)?;
        let Some(row) = row else { return Ok(None) };
        let merchant = merchant_from(&row)?;
        let expires: Option<i64> = row.try_get("alipay_auth_expires_at").map_err(e)?;
        let taken = sqlx::query(self.q(
            "UPDATE merchants SET alipay_auth_state = NULL, alipay_auth_expires_at = NULL \
             WHERE app_id = ? AND alipay_auth_state = ?",
        ))
        .bind(merchant.app_id.clone())
        .bind(state.to_owned())
        .execute(self.store.pool())
        .await
        .map_err(e)?
        .rows_affected()
            == 1;
        Ok((taken && expires.is_some_and(|t| t > now)).then_some(merchant))
    }

    /// Records the merchant's Alipay authorization; `Ok(false)` when another merchant has that
    /// Alipay account.
    pub async fn set_alipay_authorization(
        &self,
        app_id: &str,
        user_id: &str,
        app_auth_token: &Secret,
    ) -> DbResult<bool> {
        let result = sqlx::query(self.q(
            "UPDATE merchants SET alipay_user_id = ?, alipay_app_auth_token = ? WHERE app_id = ?",
        ))
        .bind(user_id.to_owned())
        .bind(app_auth_token.expose().to_owned())
        .bind(app_id.to_owned())
        .execute(self.store.pool())
        .await;
        inserted(result)
    }

    /// The `app_auth_token` the merchant with Alipay user id `user_id` granted the platform.
    pub async fn alipay_app_auth_token(&self, user_id: &str) -> DbResult<Option<Secret>> {
        let row = sqlx::query(
            self.q("SELECT alipay_app_auth_token FROM merchants WHERE alipay_user_id = ?"),
        )
        .bind(user_id.to_owned())
        .fetch_optional(self.store.pool())
        .await
        .map_err(e)?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("alipay_app_auth_token"))
            .transpose()
            .map_err(e)?
            .flatten()
            .map(Secret::new))
    }

    /// A merchant by binding scene.
    pub async fn merchant_by_scene(&self, scene: &str) -> DbResult<Option<Merchant>> {
        self.merchant_where("bind_scene", scene).await
    }

    /// Replaces the secret; the old one stays valid until `grace_until`.
    pub async fn rotate_secret(
        &self,
        app_id: &str,
        new_secret: &str,
        grace_until: i64,
    ) -> DbResult<bool> {
        let r = sqlx::query(self.q(
            "UPDATE merchants SET previous_secret = secret, previous_valid_until = ?, secret = ? WHERE app_id = ?",
        ))
        .bind(grace_until)
        .bind(new_secret.to_owned())
        .bind(app_id.to_owned())
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        Ok(r.rows_affected() == 1)
    }

    /// Sets a merchant's status.
    pub async fn set_status(&self, app_id: &str, status: MerchantStatus) -> DbResult<bool> {
        let r = sqlx::query(self.q("UPDATE merchants SET status = ? WHERE app_id = ?"))
            .bind(status.as_str().to_owned())
            .bind(app_id.to_owned())
            .execute(self.store.pool())
            .await
            .map_err(e)?;
        Ok(r.rows_affected() == 1)
    }

    /// Sets the binding scene and what its QR code encodes.
    /// Issues the merchant's binding code `scene` (its QR encodes `qr_url`), usable once until
    /// `expires_at` (Unix seconds); any earlier code stops working.
    pub async fn set_binding(
        &self,
        app_id: &str,
        scene: &str,
        qr_url: &str,
        expires_at: i64,
    ) -> DbResult<()> {
        sqlx::query(self.q(
            "UPDATE merchants SET bind_scene = ?, bind_qr_url = ?, bind_expires_at = ?, \
             bind_used_at = NULL WHERE app_id = ?",
        ))
        .bind(scene.to_owned())
        .bind(qr_url.to_owned())
        .bind(expires_at)
        .bind(app_id.to_owned())
        .execute(self.store.pool())
        .await
        .map(|_| ())
        .map_err(e)
    }

    /// Binds `open_id` to the merchant whose code is `scene`, if the code is unused and not
    /// expired at `now` (one compare-and-set: of two scans at once, one binds); returns the
    /// merchant, or why not.
    pub async fn bind(
        &self,
        scene: &str,
        open_id: &str,
        now: i64,
    ) -> DbResult<Result<Merchant, BindRefused>> {
        let done = sqlx::query(self.q("UPDATE merchants SET open_id = ?, bind_used_at = ? \
             WHERE bind_scene = ? AND bind_used_at IS NULL AND bind_expires_at > ?"))
        .bind(open_id.to_owned())
        .bind(now)
        .bind(scene.to_owned())
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        let Some(merchant) = self.merchant_by_scene(scene).await? else {
            return Ok(Err(BindRefused::Unknown));
        };
        if done.rows_affected() == 1 {
            return Ok(Ok(merchant));
        }
        let used: Option<i64> =
            sqlx::query_scalar(self.q("SELECT bind_used_at FROM merchants WHERE bind_scene = ?"))
                .bind(scene.to_owned())
                .fetch_optional(self.store.pool())
                .await
                .map_err(e)?
                .flatten();
        Ok(Err(if used.is_some() {
            BindRefused::Used
        } else {
            BindRefused::Expired
        }))
    }

    /// Clears `open_id` wherever it is bound.
    pub async fn unbind(&self, open_id: &str) -> DbResult<u64> {
        sqlx::query(self.q("UPDATE merchants SET open_id = NULL WHERE open_id = ?"))
            .bind(open_id.to_owned())
            .execute(self.store.pool())
            .await
            .map(|r| r.rows_affected())
            .map_err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::{Merchant, MerchantStatus, Secret};

    #[test]
    fn debug_output_leaves_out_secrets() {
        let m = Merchant {
            app_id: "mch_1".into(),
            name: "Shop".into(),
            credit_code: "91350100M000100Y43".into(),
            notify_url: "http://127.0.0.1/cb".into(),
            status: MerchantStatus::Active,
            secret: Secret::new("current-secret-value"),
            salt: Secret::new("salt-value-123"),
            previous_secret: Some(Secret::new("previous-secret-value")),
            previous_valid_until: Some(1),
            open_id: None,
            bind_scene: None,
            bind_qr_url: None,
            wechat_sub_mchid: None,
            fee_bps: None,
            alipay_user_id: None,
        };
        let shown = format!("{m:?} {m:#?}");
        for secret in [
            "current-secret-value",
            "salt-value-123",
            "previous-secret-value",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("mch_1"));
    }
}
