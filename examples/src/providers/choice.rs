//! Which registered channel and method a request pays with. Decided from the channels' ids and
//! declared methods only: a server never compares a channel's name.

use std::sync::Arc;

use aggregate_pay::channels::PaymentChannel;
use aggregate_pay::{Channels, PayMethod};

/// Why a request cannot pay as it asks. Every one is the payer's (or the page's) mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    /// Not a pay method this library knows.
    #[error("unknown pay method {0:?}")]
    UnknownMethod(String),
    /// Test money outside demo mode.
    #[error("test money is accepted in demo mode only")]
    TestMoney,
    /// No channel with this id is configured.
    #[error("no channel {0:?} is configured on this server")]
    NoSuchChannel(String),
    /// No configured channel serves this method.
    #[error("{0} is not configured on this server")]
    MethodUnavailable(&'static str),
    /// The named channel does not serve the method.
    #[error("channel {channel} does not take {method}")]
    NotServed {
        /// The channel.
        channel: String,
        /// The method.
        method: &'static str,
    },
    /// The named channel has no method for the context: say which.
    #[error("say which method of channel {0} to pay with")]
    MethodRequired(String),
}

/// The channel that serves `method`, or why this server takes no payment by it: test money
/// outside demo mode, a method no configured channel serves.
pub fn channel_for(
    channels: &Channels,
    method: PayMethod,
) -> Result<Arc<dyn PaymentChannel>, ChoiceError> {
    match channels.for_method(method) {
        Some(channel) => Ok(channel.clone()),
        None if method == PayMethod::Sandbox => Err(ChoiceError::TestMoney),
        None => Err(ChoiceError::MethodUnavailable(method.as_str())),
    }
}

/// A channel and the method it pays with.
pub type Choice = (Arc<dyn PaymentChannel>, PayMethod);

/// What a request asks to pay with: an explicit `method` (served by `channel` when a channel is
/// named too); or the named `channel`'s method for the context — the first of `preferred` it
/// serves, else its first scan-to-pay method; or, with neither, the first of `preferred` any
/// channel serves. `None` when nothing is asked (the payer chooses later).
///
/// Errors: an unknown method; a channel id nothing is registered under; a method the named
/// channel does not serve, or test money in live mode; a channel with no method for the context
/// (see [`ChoiceError`]; over HTTP 400 `METHOD_INVALID`, 422 `CHANNEL_UNAVAILABLE`, 422
/// `METHOD_INVALID`, 422 `METHOD_REQUIRED`).
pub fn resolve(
    channels: &Channels,
    channel: Option<&str>,
    method: Option<&str>,
    preferred: &[PayMethod],
) -> Result<Option<Choice>, ChoiceError> {
    let method = method
        .map(|m| PayMethod::parse(m).ok_or_else(|| ChoiceError::UnknownMethod(m.to_owned())))
        .transpose()?;
    let named = channel
        .map(|id| {
            channels
                .get(id)
                .cloned()
                .ok_or_else(|| ChoiceError::NoSuchChannel(id.to_owned()))
        })
        .transpose()?;
    let serves = |c: &Arc<dyn PaymentChannel>, m: PayMethod| c.capabilities().methods.contains(&m);
    match (named, method) {
        (None, None) => match preferred.first() {
            Some(m) => Ok(Some((channel_for(channels, *m)?, *m))),
            None => Ok(None),
        },
        (None, Some(m)) => Ok(Some((channel_for(channels, m)?, m))),
        (Some(c), Some(m)) if serves(&c, m) => Ok(Some((c, m))),
        (Some(c), Some(m)) => Err(ChoiceError::NotServed {
            channel: c.id().to_owned(),
            method: m.as_str(),
        }),
        (Some(c), None) => {
            let methods = &c.capabilities().methods;
            let m = preferred
                .iter()
                .copied()
                .find(|m| methods.contains(m))
                .or_else(|| methods.iter().copied().find(|m| m.is_scan_to_pay()))
                .ok_or_else(|| ChoiceError::MethodRequired(c.id().to_owned()))?;
            Ok(Some((c, m)))
        }
    }
}

#[cfg(test)]
mod tests {
    use aggregate_pay::channels::sandbox::SandboxChannel;
    use aggregate_pay::channels::wechat::WechatChannel;

    use super::*;

    fn channels() -> Channels {
        let client = |app: &str| {
            wechat_pay::Client::builder(app, "10000100", wechat_pay::ApiKey::new("k"))
                .build()
                .unwrap_or_else(|e| panic!("{e}"))
        };
        Channels::new()
            .with(WechatChannel::official_account(client("wxofficial")))
            .with(WechatChannel::mini_program(client("wxmini")))
            .with(SandboxChannel::new("shop", "s"))
    }

    fn chosen(
        channel: Option<&str>,
        method: Option<&str>,
        preferred: &[PayMethod],
    ) -> Result<Option<(String, PayMethod)>, (u16, &'static str)> {
        resolve(&channels(), channel, method, preferred)
            .map(|o| o.map(|(c, m)| (c.id().to_owned(), m)))
            .map_err(|e| {
                let e = crate::error::AppError::from(e);
                (e.status.as_u16(), e.code)
            })
    }

    #[test]
    fn a_channel_alone_means_its_method_for_the_context() {
        let wechat = |m| Ok(Some(("wechat".to_owned(), m)));
        assert_eq!(
            chosen(Some("wechat"), None, &[]),
            wechat(PayMethod::WechatNative)
        );
        assert_eq!(
            chosen(Some("wechat"), None, &[PayMethod::WechatJsapi]),
            wechat(PayMethod::WechatJsapi)
        );
        assert_eq!(
            chosen(None, None, &[PayMethod::WechatMiniProgram]),
            Ok(Some(("wechat_mini".into(), PayMethod::WechatMiniProgram)))
        );
        assert_eq!(
            chosen(Some("sandbox"), None, &[]),
            Ok(Some(("sandbox".into(), PayMethod::Sandbox)))
        );
        // The Mini Program channel has nothing to scan.
        assert_eq!(
            chosen(Some("wechat_mini"), None, &[]),
            Err((422, "METHOD_REQUIRED"))
        );
        assert_eq!(chosen(None, None, &[]), Ok(None));
    }

    #[test]
    fn methods_are_checked_against_the_channels_that_exist() {
        assert_eq!(
            chosen(None, Some("wechat_mini_program"), &[]),
            Ok(Some(("wechat_mini".into(), PayMethod::WechatMiniProgram)))
        );
        assert_eq!(
            chosen(Some("wechat"), Some("wechat_mini_program"), &[]),
            Err((422, "METHOD_INVALID"))
        );
        assert_eq!(
            chosen(None, Some("bitcoin"), &[]),
            Err((400, "METHOD_INVALID"))
        );
        assert_eq!(
            chosen(Some("alipay"), None, &[]),
            Err((422, "CHANNEL_UNAVAILABLE"))
        );
        assert_eq!(
            chosen(None, Some("alipay_qr"), &[]),
            Err((422, "CHANNEL_UNAVAILABLE"))
        );
        let live = Channels::new();
        assert_eq!(
            channel_for(&live, PayMethod::Sandbox).map(|c| c.id().to_owned()),
            Err(ChoiceError::TestMoney)
        );
    }
}
