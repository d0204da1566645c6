//! Seller accounts as operators manage them (the `vending-server seller …` commands) and the demo
//! seller: demo mode makes one, with a fresh password each start, and gives it the machines that
//! belong to nobody; live mode disables it, so a database that once ran a demo opens no door.

use aggregate_pay::StoreError;

use super::auth::password::{self, PasswordError};
use super::db::{Seller, VendingDb, valid_login};

/// The demo seller's login.
pub const DEMO_SELLER: &str = "demo";

/// Why an account change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Not a login this server accepts.
    #[error("a login is 3 to 64 of a-z, 0-9, '.', '_', '-'")]
    InvalidLogin,
    /// The login is taken.
    #[error("a seller {0:?} already exists")]
    Exists(String),
    /// No such seller.
    #[error("no seller {0:?}")]
    NotFound(String),
    /// A seller with the demo seller's login that demo mode did not make: left alone.
    #[error(
        "a seller {0:?} exists that demo mode did not create; demo mode leaves it alone (run the \
         demo on a database of its own)"
    )]
    NotDemo(String),
    /// The password was refused.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A demo seller's credentials, printed at start-up (demo mode only).
#[derive(Clone, PartialEq, Eq)]
pub struct DemoSeller {
    /// The login.
    pub login: String,
    /// This run's password.
    pub password: String,
}

impl std::fmt::Debug for DemoSeller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoSeller")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// Makes `login` an operator (or not).
pub async fn set_operator(db: &VendingDb, login: &str, operator: bool) -> Result<(), AccountError> {
    if db.set_seller_operator(login, operator).await? {
        Ok(())
    } else {
        Err(AccountError::NotFound(login.to_owned()))
    }
}

/// Adds a seller with `password`.
pub async fn add_seller(db: &VendingDb, login: &str, password: &str) -> Result<(), AccountError> {
    if !valid_login(login) {
        return Err(AccountError::InvalidLogin);
    }
    if db.seller(login).await?.is_some() {
        return Err(AccountError::Exists(login.to_owned()));
    }
    let seller = Seller {
        login: login.to_owned(),
        password_hash: password::hash(password.to_owned()).await?,
        enabled: true,
        demo: false,
        operator: false,
        created_at: crate::clock::unix_now(),
        session_epoch: 0,
    };
    match db.add_seller(&seller).await {
        Err(StoreError::Conflict(_)) => Err(AccountError::Exists(login.to_owned())),
        other => Ok(other?),
    }
}

/// Sets a seller's password (and enables the account); every session of the old one ends.
pub async fn set_password(db: &VendingDb, login: &str, password: &str) -> Result<(), AccountError> {
    let hash = password::hash(password.to_owned()).await?;
    if db.set_seller_password(login, &hash).await? {
        Ok(())
    } else {
        Err(AccountError::NotFound(login.to_owned()))
    }
}

/// Enables or disables a seller; a disabled seller's sessions stop working at once.
pub async fn set_enabled(db: &VendingDb, login: &str, enabled: bool) -> Result<(), AccountError> {
    if db.set_seller_enabled(login, enabled).await? {
        Ok(())
    } else {
        Err(AccountError::NotFound(login.to_owned()))
    }
}

/// Demo mode: the demo seller, with a password made for this run, owning every machine that
/// belongs to nobody. Only an account demo mode made is ever touched: an operator's seller
/// called `demo` keeps its password ([`AccountError::NotDemo`]).
pub async fn demo_seller(db: &VendingDb) -> Result<DemoSeller, AccountError> {
    let password = crate::random::token(8).map_err(PasswordError::from)?;
    let hash = password::hash(password.clone()).await?;
    if !db.set_demo_seller_password(DEMO_SELLER, &hash).await? {
        let seller = Seller {
            login: DEMO_SELLER.to_owned(),
            password_hash: hash.clone(),
            enabled: true,
            demo: true,
            operator: true,
            created_at: crate::clock::unix_now(),
            session_epoch: 0,
        };
        match db.add_seller(&seller).await {
            // Another instance made it meanwhile (ours to set), or an operator did (not ours).
            Err(StoreError::Conflict(_)) => {
                if !db.set_demo_seller_password(DEMO_SELLER, &hash).await? {
                    return Err(AccountError::NotDemo(DEMO_SELLER.to_owned()));
                }
            }
            other => other?,
        }
    }
    db.give_unowned_machines(DEMO_SELLER).await?;
    Ok(DemoSeller {
        login: DEMO_SELLER.to_owned(),
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_password() {
        let demo = DemoSeller {
            login: "demo".into(),
            password: "s3cret-demo-pass".into(),
        };
        let shown = format!("{demo:?}");
        assert!(
            shown.contains("demo") && !shown.contains("s3cret-demo-pass"),
            "{shown}"
        );
        let seller = Seller {
            login: "alice".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            enabled: true,
            demo: false,
            operator: false,
            created_at: 0,
            session_epoch: 0,
        };
        let shown = format!("{seller:?}");
        assert!(
            shown.contains("alice") && !shown.contains("argon2id"),
            "{shown}"
        );
        let keys = crate::vending::auth::SessionKeys::new(
            "session-secret-0123456789abcdefghij",
            crate::providers::Mode::Demo,
        );
        assert!(!format!("{keys:?}").contains("session-secret"));
    }
}
