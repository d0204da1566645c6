//! WeChat Pay's move of a merchant from platform certificates to the WeChat Pay public key, as
//! WeChat runs it: over seven days a growing share of the merchant's notifications is signed with
//! the public key — 0.1 %, 1 %, 5 %, 10 %, 20 %, 50 %, then 100 % — the rest with the platform
//! certificate; answers are signed with the key the request names in `Wechatpay-Serial` (the
//! platform certificate when it names none); once done, the merchant is public-key-only and
//! `/v3/certificates` is refused. The days follow the sandbox's time scale, so a test walks
//! through the week in seconds.
//!
//! `POST /sandbox/wechatpay-key-switch {mch_id}` starts it for a certificate-mode merchant;
//! `GET /sandbox/wechatpay-key-switch` shows each switch: how far it is, the share, and how many
//! notifications each key signed.

use serde::Serialize;

use crate::config::MerchantV3;
use crate::{SandboxState, lock};

/// The public key's share of notifications on each day of the switch.
const DAILY_SHARE: [f64; 7] = [0.001, 0.01, 0.05, 0.10, 0.20, 0.50, 1.0];

/// Seconds in a day.
const DAY: f64 = 86_400.0;

/// A merchant's switch.
#[derive(Debug, Clone, Serialize)]
pub struct KeySwitch {
    /// The merchant.
    pub mch_id: String,
    /// When it started (Unix milliseconds).
    pub started_at_ms: i64,
    /// Notifications signed with the public key so far.
    pub signed_by_public_key: u64,
    /// Notifications signed with the platform certificate so far.
    pub signed_by_certificate: u64,
}

/// Where a switch is, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchView {
    /// The switch.
    #[serde(flatten)]
    pub switch: KeySwitch,
    /// Days gone (in the sandbox's time).
    pub day: f64,
    /// The public key's share of notifications now.
    pub public_key_share: f64,
    /// Whether the merchant is public-key-only now.
    pub done: bool,
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0),
    )
    .unwrap_or(i64::MAX)
}

/// Days since `started_at_ms`, in the sandbox's time.
fn days(state: &SandboxState, started_at_ms: i64) -> f64 {
    let real_secs = (now_ms() - started_at_ms).max(0) as f64 / 1000.0;
    real_secs * state.config.time_scale.max(1.0) / DAY
}

fn share(day: f64) -> f64 {
    if day >= 7.0 {
        return 1.0;
    }
    DAILY_SHARE[(day.floor() as usize).min(DAILY_SHARE.len() - 1)]
}

/// Starts the switch of certificate-mode merchant `mch_id`; `false` if it is not one (or
/// switches already).
pub fn start(state: &SandboxState, mch_id: &str) -> bool {
    let certificates = state
        .config
        .merchants_v3
        .iter()
        .any(|m| m.mch_id == mch_id && m.certificates);
    let mut v3 = lock(&state.v3);
    if !certificates || v3.key_switches.contains_key(mch_id) {
        return false;
    }
    v3.key_switches.insert(
        mch_id.to_owned(),
        KeySwitch {
            mch_id: mch_id.to_owned(),
            started_at_ms: now_ms(),
            signed_by_public_key: 0,
            signed_by_certificate: 0,
        },
    );
    true
}

/// Every switch, with where it is.
pub fn all(state: &SandboxState) -> Vec<SwitchView> {
    let switches: Vec<KeySwitch> = lock(&state.v3).key_switches.values().cloned().collect();
    switches
        .into_iter()
        .map(|s| {
            let day = days(state, s.started_at_ms);
            SwitchView {
                public_key_share: share(day),
                done: day >= 7.0,
                day,
                switch: s,
            }
        })
        .collect()
}

/// How a merchant's messages are signed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// With the platform certificate.
    Certificates,
    /// Part-way through the switch: this share of notifications with the public key.
    Switching(u32),
    /// With the public key only.
    PublicKey,
}

/// The mode of `merchant` now.
pub(crate) fn mode(state: &SandboxState, merchant: &MerchantV3) -> Mode {
    if !merchant.certificates {
        return Mode::PublicKey;
    }
    let started = lock(&state.v3)
        .key_switches
        .get(&merchant.mch_id)
        .map(|s| s.started_at_ms);
    match started {
        None => Mode::Certificates,
        Some(at) => {
            let day = days(state, at);
            if day >= 7.0 {
                Mode::PublicKey
            } else {
                // Parts per million.
                Mode::Switching((share(day) * 1_000_000.0) as u32)
            }
        }
    }
}

/// Whether the next notification of a switching merchant is signed with the public key (drawn
/// at its share), counted.
pub(crate) fn draw(state: &SandboxState, mch_id: &str, parts_per_million: u32) -> bool {
    let mut b = [0u8; 4];
    let roll = match getrandom::fill(&mut b) {
        Ok(()) => u32::from_le_bytes(b) % 1_000_000,
        Err(_) => u32::MAX,
    };
    let public = roll < parts_per_million;
    if let Some(s) = lock(&state.v3).key_switches.get_mut(mch_id) {
        if public {
            s.signed_by_public_key += 1;
        } else {
            s.signed_by_certificate += 1;
        }
    }
    public
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_grows_day_by_day_to_all() {
        let shares: Vec<f64> = (0..8).map(|d| share(f64::from(d) + 0.5)).collect();
        assert_eq!(shares, [0.001, 0.01, 0.05, 0.10, 0.20, 0.50, 1.0, 1.0]);
    }
}
