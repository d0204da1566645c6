//! `/metrics` in the Prometheus text format: orders by status (counted at scrape time),
//! channel notifications by outcome, vend-out commands sent, vend latency (command sent →
//! machine's answer), machine results dropped (by reason), WeChat Pay platform-certificate
//! downloads (by merchant; a few a day, however many forged notifications arrive), the latest
//! bill reconciliation's findings (by channel and class).

use std::time::Duration;

use aggregate_pay::NotifyOutcome;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MerchantLabel {
    mch_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignerLabels {
    mch_id: String,
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BillLabels {
    channel: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifyLabels {
    channel: String,
    outcome: String,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    orders: Family<StatusLabel, Gauge>,
    orders_ended: Family<StatusLabel, Counter>,
    notifications: Family<NotifyLabels, Counter>,
    vend_latency: Histogram,
    vend_commands: Counter,
    rejected_results: Family<ReasonLabel, Counter>,
    scans: Family<StatusLabel, Counter>,
    certificate_downloads: Family<MerchantLabel, Gauge>,
    verified_by_key: Family<SignerLabels, Gauge>,
    bill_items: Family<BillLabels, Gauge>,
    /// The WeChat Pay API v3 clients whose certificate downloads are reported.
    v3_clients: Vec<wechat_pay::v3::Client>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registered, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let orders = Family::<StatusLabel, Gauge>::default();
        let notifications = Family::<NotifyLabels, Counter>::default();
        let vend_latency = Histogram::new(exponential_buckets(0.05, 2.0, 12));
        registry.register(
            "vending_orders",
            "Open orders by status (CREATED, PAID, VENDING), as the database has them",
            orders.clone(),
        );
        let orders_ended = Family::<StatusLabel, Counter>::default();
        registry.register(
            "vending_orders_ended",
            "Orders this instance moved to an ending status, by that status",
            orders_ended.clone(),
        );
        registry.register(
            "vending_notifications",
            "Channel notifications by outcome",
            notifications.clone(),
        );
        registry.register(
            "vending_vend_latency_seconds",
            "From the vend-out command to the machine's answer",
            vend_latency.clone(),
        );
        let vend_commands = Counter::default();
        registry.register(
            "vending_vend_commands",
            "Vend-out commands sent to machines",
            vend_commands.clone(),
        );
        let scans = Family::<StatusLabel, Counter>::default();
        registry.register(
            "vending_scans",
            "Payment codes machines scanned, by what became of them (paid, declined, reversed, \
             pending, refused, rejected)",
            scans.clone(),
        );
        let verified_by_key = Family::<SignerLabels, Gauge>::default();
        registry.register(
            "vending_wechatpay_verified",
            "WeChat Pay API v3 answers and notifications verified, by the key that signed them \
             (public_key, platform_certificate): during WeChat's switch to the public key, both",
            verified_by_key.clone(),
        );
        let rejected_results = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "vending_vend_results_rejected",
            "Machine results dropped: wrong machine, unsigned, stale or badly signed",
            rejected_results.clone(),
        );
        let certificate_downloads = Family::<MerchantLabel, Gauge>::default();
        registry.register(
            "vending_wechat_certificate_downloads",
            "WeChat Pay platform-certificate downloads this instance tried, by merchant",
            certificate_downloads.clone(),
        );
        let bill_items = Family::<BillLabels, Gauge>::default();
        registry.register(
            "vending_bill_items",
            "The latest reconciled bill day's rows and findings, by channel and class (every \
             class but matched and other_day is a difference to look at)",
            bill_items.clone(),
        );
        Metrics {
            registry,
            bill_items,
            orders,
            orders_ended,
            notifications,
            vend_latency,
            vend_commands,
            rejected_results,
            scans,
            certificate_downloads,
            verified_by_key,
            v3_clients: Vec::new(),
        }
    }

    /// Reports the certificate downloads of these API v3 clients (one per merchant).
    pub fn watch_certificates(mut self, clients: Vec<wechat_pay::v3::Client>) -> Self {
        self.v3_clients = clients;
        self
    }

    /// Reports a finished bill run: its count of each class.
    pub fn bill_run(&self, run: &aggregate_pay::bills::BillRun) {
        for class in aggregate_pay::bills::BillClass::ALL {
            self.bill_items
                .get_or_create(&BillLabels {
                    channel: run.channel.clone(),
                    class: class.as_str().to_owned(),
                })
                .set(i64::try_from(run.count(*class)).unwrap_or(i64::MAX));
        }
    }

    /// Counts a machine result that was dropped, by why.
    pub fn result_rejected(&self, reason: &str) {
        self.rejected_results
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Machine results dropped for `reason` so far.
    pub fn results_rejected(&self, reason: &str) -> u64 {
        self.rejected_results
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .get()
    }

    /// Counts a scan by what became of it.
    pub fn scan(&self, status: &str) {
        self.scans
            .get_or_create(&StatusLabel {
                status: status.to_owned(),
            })
            .inc();
    }

    /// Scans that ended as `status` so far.
    pub fn scans(&self, status: &str) -> u64 {
        self.scans
            .get_or_create(&StatusLabel {
                status: status.to_owned(),
            })
            .get()
    }

    /// Counts a notification.
    pub fn notification(&self, channel: &str, outcome: &NotifyOutcome) {
        let outcome = match outcome {
            NotifyOutcome::Applied => "applied",
            NotifyOutcome::Duplicate => "duplicate",
            NotifyOutcome::AmountMismatch => "amount_mismatch",
            NotifyOutcome::Ignored => "ignored",
            NotifyOutcome::Rejected(_) => "rejected",
            NotifyOutcome::Unknown(_) => "unknown",
            NotifyOutcome::StoreFailed(_) => "store_failed",
            _ => "other",
        };
        self.notifications
            .get_or_create(&NotifyLabels {
                channel: channel.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts an order this instance ended (moved to a status that is not open).
    pub fn order_ended(&self, status: crate::vending::db::OrderStatus) {
        self.orders_ended
            .get_or_create(&StatusLabel {
                status: status.as_str().to_owned(),
            })
            .inc();
    }

    /// Counts a vend-out command sent.
    pub fn vend_command(&self) {
        self.vend_commands.inc();
    }

    /// Vend-out commands sent since start.
    pub fn vend_commands(&self) -> u64 {
        self.vend_commands.get()
    }

    /// Records a vend's latency.
    pub fn vend_latency(&self, latency: Duration) {
        self.vend_latency.observe(latency.as_secs_f64());
    }

    /// The text exposition, with the open orders' counts as of now.
    pub fn render(&self, open_by_status: &[(String, i64)]) -> String {
        for status in crate::vending::db::OrderStatus::OPEN {
            let n = open_by_status
                .iter()
                .find(|(s, _)| s == status.as_str())
                .map_or(0, |(_, n)| *n);
            self.orders
                .get_or_create(&StatusLabel {
                    status: status.as_str().to_owned(),
                })
                .set(n);
        }
        for client in &self.v3_clients {
            self.certificate_downloads
                .get_or_create(&MerchantLabel {
                    mch_id: client.mch_id().to_owned(),
                })
                .set(i64::try_from(client.certificate_downloads()).unwrap_or(i64::MAX));
            let (public, certificate) = client.verified_by_key();
            for (key, n) in [
                ("public_key", public),
                ("platform_certificate", certificate),
            ] {
                self.verified_by_key
                    .get_or_create(&SignerLabels {
                        mch_id: client.mch_id().to_owned(),
                        key: key.to_owned(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics not encoded");
        }
        out
    }
}
