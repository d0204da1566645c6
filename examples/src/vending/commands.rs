//! The operator's commands: `vending-server seller …`, `machine …`, `sku …`. Each opens the
//! database (`DATABASE_URL`, migrating it like the server does), does one thing and says what
//! it did; nothing else (no provider, no engine) is needed.

use std::io::BufRead;

use aggregate_pay::StoreError;
use clap::Subcommand;

use super::accounts;
use super::config::VendingConfig;
use super::db::{NewMachine, VendingDb, valid_inner_code};

/// An operator's command (instead of serving).
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Seller accounts.
    #[command(subcommand)]
    Seller(SellerCommand),
    /// Machines: add, list, give to a seller, set a signing secret.
    #[command(subcommand)]
    Machine(MachineCommand),
    /// The SKU catalogue.
    #[command(subcommand)]
    Sku(SkuCommand),
    /// Reconciles a day against the providers' bills now (live mode: the configured
    /// providers), and prints each channel's counts.
    Reconcile(crate::workers::ReconcileArgs),
}

/// `vending-server seller …`
#[derive(Debug, Clone, Subcommand)]
pub enum SellerCommand {
    /// Adds a seller (the password is asked for, or read from stdin).
    Add {
        /// The login: 3 to 64 of a-z, 0-9, '.', '_', '-'.
        login: String,
        /// Read the password from the first line of stdin instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sets a seller's password (every session of the old one ends).
    Password {
        /// The login.
        login: String,
        /// Read the password from the first line of stdin instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists the sellers.
    List,
    /// Disables a seller: their sessions stop working at once.
    Disable {
        /// The login.
        login: String,
    },
    /// Enables a seller again.
    Enable {
        /// The login.
        login: String,
    },
    /// Makes a seller an operator: the dashboard's Bills page (the whole merchant account's
    /// reconciliation against the providers' bills).
    Operator {
        /// The login.
        login: String,
        /// Takes the role away instead.
        #[arg(long)]
        revoke: bool,
    },
}

/// `vending-server machine …`
#[derive(Debug, Clone, Subcommand)]
pub enum MachineCommand {
    /// Adds a machine (in service, no slots yet: the seller fills them from the dashboard).
    Add {
        /// Its code (letters, digits, '-', '_').
        inner_code: String,
        /// Its name.
        #[arg(long)]
        name: String,
        /// Where it stands.
        #[arg(long)]
        address: String,
        /// Latitude.
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        /// Longitude.
        #[arg(long, allow_hyphen_values = true)]
        lng: f64,
        /// The seller it belongs to.
        #[arg(long)]
        seller: Option<String>,
    },
    /// Lists the machines with their sellers.
    List,
    /// Gives a machine to a seller.
    Assign {
        /// The machine.
        inner_code: String,
        /// The seller's login.
        login: String,
    },
    /// Makes a new signing secret for a machine and prints it once (give it to the machine):
    /// from then on its results must be signed.
    Secret {
        /// The machine.
        inner_code: String,
        /// Remove the secret instead (results are no longer checked).
        #[arg(long)]
        remove: bool,
    },
}

/// `vending-server sku …`
#[derive(Debug, Clone, Subcommand)]
pub enum SkuCommand {
    /// Adds a SKU.
    Add {
        /// Its number.
        sku_id: i64,
        /// Its name.
        name: String,
        /// Its unit ("330ml can").
        #[arg(long, default_value = "")]
        unit: String,
        /// Its image's URL.
        #[arg(long, default_value = "")]
        image: String,
    },
    /// Lists the SKUs.
    List,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The seller account refused the change.
    #[error(transparent)]
    Account(#[from] accounts::AccountError),
    /// The password could not be read.
    #[error("reading the password: {0}")]
    Password(#[source] std::io::Error),
    /// The two passwords typed differ.
    #[error("the passwords differ")]
    PasswordsDiffer,
    /// An argument is out of range.
    #[error("{0}")]
    Invalid(&'static str),
    /// No seller has this login.
    #[error("no seller {0:?}")]
    NoSeller(String),
    /// No machine has this code.
    #[error("no machine {0:?}")]
    NoMachine(String),
    /// The random source failed.
    #[error(transparent)]
    Random(#[from] crate::random::RandomError),
    /// The server could not be put together for the command.
    #[error(transparent)]
    Start(#[from] crate::running::StartError),
    /// A bill could not be reconciled.
    #[error(transparent)]
    Bills(#[from] aggregate_pay::bills::BillError),
}

fn password(login: &str, from_stdin: bool) -> Result<String, CommandError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(CommandError::Password)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password(format!("Password for {login}: "))
        .map_err(CommandError::Password)?;
    let again = rpassword::prompt_password("Again: ").map_err(CommandError::Password)?;
    if first != again {
        return Err(CommandError::PasswordsDiffer);
    }
    Ok(first)
}

/// `reconcile`: the server wired as it would serve (its providers, its database, its locks),
/// one day reconciled. Demo mode's emulator lives inside the running server (and forgets its
/// trades when it stops), so there the running server does it, from the dashboard.
async fn reconcile(
    args: &crate::workers::ReconcileArgs,
    config: &VendingConfig,
) -> Result<(), CommandError> {
    let plan = config
        .providers
        .plan()
        .map_err(crate::running::StartError::from)?;
    if plan.mode().is_demo() {
        return Err(CommandError::Invalid(
            "demo mode has no provider to ask for bills outside the running server: use the \
             dashboard's Bills page (demo seller), or configure the providers",
        ));
    }
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    let wired = super::wiring::wire(config, &public_url).await?;
    let done = crate::workers::run_reconcile_command(&wired.state.bills, args).await;
    wired.shutdown.cancel();
    Ok(done?)
}

/// Runs `command` against `config`'s database; what it prints goes to stdout.
pub async fn run(command: Command, config: &VendingConfig) -> Result<(), CommandError> {
    let sql = aggregate_pay::store::SqlStore::connect(&config.database_url).await?;
    let db = VendingDb::new(sql).await?;
    match command {
        Command::Reconcile(args) => reconcile(&args, config).await?,
        Command::Seller(SellerCommand::Add {
            login,
            password_stdin,
        }) => {
            let secret = password(&login, password_stdin)?;
            accounts::add_seller(&db, &login, &secret).await?;
            println!("seller {login} added");
        }
        Command::Seller(SellerCommand::Password {
            login,
            password_stdin,
        }) => {
            let secret = password(&login, password_stdin)?;
            accounts::set_password(&db, &login, &secret).await?;
            println!("seller {login}: password set");
        }
        Command::Seller(SellerCommand::List) => {
            for s in db.sellers().await? {
                let state = if s.enabled { "enabled" } else { "disabled" };
                let demo = if s.demo { " (demo)" } else { "" };
                let operator = if s.operator { " operator" } else { "" };
                println!("{}\t{state}{operator}{demo}", s.login);
            }
        }
        Command::Seller(SellerCommand::Disable { login }) => {
            accounts::set_enabled(&db, &login, false).await?;
            println!("seller {login} disabled");
        }
        Command::Seller(SellerCommand::Operator { login, revoke }) => {
            accounts::set_operator(&db, &login, !revoke).await?;
            let now = if revoke {
                "no longer an operator"
            } else {
                "an operator"
            };
            println!("seller {login}: {now}");
        }
        Command::Seller(SellerCommand::Enable { login }) => {
            accounts::set_enabled(&db, &login, true).await?;
            println!("seller {login} enabled");
        }
        Command::Machine(MachineCommand::Add {
            inner_code,
            name,
            address,
            lat,
            lng,
            seller,
        }) => {
            if !valid_inner_code(&inner_code) {
                return Err(CommandError::Invalid(
                    "a machine code is 1 to 32 of letters, digits, '-', '_'",
                ));
            }
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
                return Err(CommandError::Invalid("lat is -90..90 and lng -180..180"));
            }
            if let Some(login) = &seller {
                seller_exists(&db, login).await?;
            }
            db.add_machine(&NewMachine {
                inner_code: inner_code.clone(),
                name,
                address,
                lat,
                lng,
                owner: seller,
            })
            .await?;
            println!("machine {inner_code} added");
        }
        Command::Machine(MachineCommand::List) => {
            for m in db.machines().await? {
                println!(
                    "{}\t{}\t{}\t{}{}",
                    m.inner_code,
                    m.status.as_str(),
                    m.owner.as_deref().unwrap_or("(nobody)"),
                    m.name,
                    if m.signed { "\tsigned" } else { "" }
                );
            }
        }
        Command::Machine(MachineCommand::Assign { inner_code, login }) => {
            seller_exists(&db, &login).await?;
            if !db.assign_machine(&inner_code, &login).await? {
                return Err(CommandError::NoMachine(inner_code));
            }
            println!("machine {inner_code} belongs to {login}");
        }
        Command::Machine(MachineCommand::Secret { inner_code, remove }) => {
            let secret = if remove {
                None
            } else {
                Some(crate::random::token(32)?)
            };
            if !db
                .set_machine_secret(&inner_code, secret.as_deref())
                .await?
            {
                return Err(CommandError::NoMachine(inner_code));
            }
            match secret {
                Some(s) => println!("{s}"),
                None => println!("machine {inner_code}: secret removed"),
            }
        }
        Command::Sku(SkuCommand::Add {
            sku_id,
            name,
            unit,
            image,
        }) => {
            db.add_sku(sku_id, &name, &unit, &image).await?;
            println!("sku {sku_id} added");
        }
        Command::Sku(SkuCommand::List) => {
            for (id, name, unit) in db.skus().await? {
                println!("{id}\t{name}\t{unit}");
            }
        }
    }
    Ok(())
}

async fn seller_exists(db: &VendingDb, login: &str) -> Result<(), CommandError> {
    match db.seller(login).await? {
        Some(_) => Ok(()),
        None => Err(CommandError::NoSeller(login.to_owned())),
    }
}
