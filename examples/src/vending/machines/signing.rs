//! Machine messages signed with the machine's secret: `ts` (Unix seconds) and `sig`, the
//! lowercase hex HMAC-SHA256 under the secret of the canonical text — the fields in a fixed
//! order, one per line:
//!
//! ```text
//! command: "vendout\n{order_no}\n{inner_code}\n{sku_id}\n{slot_no}\n{timeout_secs}\n{requested_at_ms}\n{ts}"
//! result:  "result\n{order_no}\n{inner_code}\n{1|0}\n{error or empty}\n{ts}"
//! scan:    "scan\n{scan_id}\n{inner_code}\n{slot_no}\n{code}\n{ts}"
//! ```
//!
//! A result's `inner_code` is the machine of the topic it arrived on, so a result signed by one
//! machine and replayed on another's topic does not verify. A message older (or newer) than
//! [`MAX_SKEW_SECS`] is stale.

use super::{Scan, VendCommand, VendResult};

/// How far a message's `ts` may be from now.
pub const MAX_SKEW_SECS: i64 = 60;

/// Why a result was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// It arrived on another machine's topic than its order's.
    #[error("the result came from another machine than the order's")]
    WrongMachine,
    /// The machine signs, and this has no signature.
    #[error("unsigned")]
    Unsigned,
    /// Too old or from the future.
    #[error("stale")]
    Stale,
    /// The signature does not match.
    #[error("bad signature")]
    BadSignature,
}

impl Rejected {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::WrongMachine => "wrong_machine",
            Rejected::Unsigned => "unsigned",
            Rejected::Stale => "stale",
            Rejected::BadSignature => "bad_signature",
        }
    }
}

fn command_text(c: &VendCommand, ts: i64) -> String {
    format!(
        "vendout\n{}\n{}\n{}\n{}\n{}\n{}\n{ts}",
        c.order_no, c.inner_code, c.sku_id, c.slot_no, c.timeout_secs, c.requested_at_ms
    )
}

fn result_text(r: &VendResult, machine: &str, ts: i64) -> String {
    format!(
        "result\n{}\n{machine}\n{}\n{}\n{ts}",
        r.order_no,
        u8::from(r.success),
        r.error.as_deref().unwrap_or_default()
    )
}

fn scan_text(s: &Scan, machine: &str, ts: i64) -> String {
    format!(
        "scan\n{}\n{machine}\n{}\n{}\n{ts}",
        s.scan_id, s.slot_no, s.code
    )
}

fn tag(secret: &str, text: &str) -> String {
    hex::encode(crate::mac::sign(secret.as_bytes(), text.as_bytes()))
}

fn check(
    secret: &str,
    text: &str,
    ts: Option<i64>,
    sig: Option<&str>,
    now: i64,
) -> Result<(), Rejected> {
    let (Some(ts), Some(sig)) = (ts, sig) else {
        return Err(Rejected::Unsigned);
    };
    if (now - ts).abs() > MAX_SKEW_SECS {
        return Err(Rejected::Stale);
    }
    let sig = hex::decode(sig).map_err(|_| Rejected::BadSignature)?;
    if crate::mac::verify(secret.as_bytes(), text.as_bytes(), &sig) {
        Ok(())
    } else {
        Err(Rejected::BadSignature)
    }
}

/// Signs a command at `now`.
pub fn sign_command(secret: &str, command: &mut VendCommand, now: i64) {
    command.sig = Some(tag(secret, &command_text(command, now)));
    command.ts = Some(now);
}

/// Checks a command's signature at `now` (what a machine does).
pub fn verify_command(secret: &str, command: &VendCommand, now: i64) -> Result<(), Rejected> {
    let ts = command.ts.unwrap_or_default();
    check(
        secret,
        &command_text(command, ts),
        command.ts,
        command.sig.as_deref(),
        now,
    )
}

/// Signs a result of `machine` at `now` (what a machine does).
pub fn sign_result(secret: &str, result: &mut VendResult, machine: &str, now: i64) {
    result.inner_code = Some(machine.to_owned());
    result.sig = Some(tag(secret, &result_text(result, machine, now)));
    result.ts = Some(now);
}

/// Checks a result that arrived on `machine`'s topic, at `now`.
pub fn verify_result(
    secret: &str,
    result: &VendResult,
    machine: &str,
    now: i64,
) -> Result<(), Rejected> {
    let ts = result.ts.unwrap_or_default();
    check(
        secret,
        &result_text(result, machine, ts),
        result.ts,
        result.sig.as_deref(),
        now,
    )
}

/// Signs a scan of `machine` at `now` (what a machine does).
pub fn sign_scan(secret: &str, scan: &mut Scan, machine: &str, now: i64) {
    scan.sig = Some(tag(secret, &scan_text(scan, machine, now)));
    scan.ts = Some(now);
}

/// Checks a scan that arrived on `machine`'s topic, at `now`.
pub fn verify_scan(secret: &str, scan: &Scan, machine: &str, now: i64) -> Result<(), Rejected> {
    let ts = scan.ts.unwrap_or_default();
    check(
        secret,
        &scan_text(scan, machine, ts),
        scan.ts,
        scan.sig.as_deref(),
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

    fn result() -> VendResult {
        VendResult {
            order_no: "V1".into(),
            success: true,
            error: None,
            inner_code: None,
            ts: None,
            sig: None,
        }
    }

    /// The canonical text and its MAC, computed independently:
    /// `printf 'result\nV1\nVM0001\n1\n\n1700000000' | openssl dgst -sha256 -hmac "$SECRET"`.
    #[test]
    fn a_result_signs_its_canonical_text() {
        let mut r = result();
        sign_result(SECRET, &mut r, "VM0001", 1_700_000_000);
        assert_eq!(r.ts, Some(1_700_000_000));
        assert_eq!(
            r.sig.as_deref(),
            Some("fb91e7de36d2516aec4916f470d16a5a0551a9e8ae46528f0b3765e9bfa51892")
        );
        assert_eq!(verify_result(SECRET, &r, "VM0001", 1_700_000_030), Ok(()));
    }

    #[test]
    fn unsigned_stale_replayed_and_altered_results_are_rejected() {
        let now = 1_700_000_000;
        assert_eq!(
            verify_result(SECRET, &result(), "VM0001", now),
            Err(Rejected::Unsigned)
        );
        let mut r = result();
        sign_result(SECRET, &mut r, "VM0001", now - 61);
        assert_eq!(
            verify_result(SECRET, &r, "VM0001", now),
            Err(Rejected::Stale)
        );
        let mut r = result();
        sign_result(SECRET, &mut r, "VM0001", now);
        assert_eq!(
            verify_result(SECRET, &r, "VM0002", now),
            Err(Rejected::BadSignature),
            "replayed on another machine's topic"
        );
        let mut failed = r.clone();
        failed.success = false;
        assert_eq!(
            verify_result(SECRET, &failed, "VM0001", now),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify_result("another secret", &r, "VM0001", now),
            Err(Rejected::BadSignature)
        );
    }

    #[test]
    fn commands_sign_and_verify() {
        let mut c = VendCommand {
            order_no: "V1".into(),
            inner_code: "VM0001".into(),
            sku_id: 1,
            slot_no: "A1".into(),
            timeout_secs: 60,
            requested_at_ms: 1_700_000_000_000,
            ts: None,
            sig: None,
        };
        assert_eq!(
            verify_command(SECRET, &c, 1_700_000_000),
            Err(Rejected::Unsigned)
        );
        sign_command(SECRET, &mut c, 1_700_000_000);
        assert_eq!(verify_command(SECRET, &c, 1_700_000_001), Ok(()));
        c.slot_no = "A2".into();
        assert_eq!(
            verify_command(SECRET, &c, 1_700_000_001),
            Err(Rejected::BadSignature)
        );
    }
}
