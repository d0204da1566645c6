//! Which registered channel and method a request pays with. Decided from the channels' ids and
//! declared methods only: a server never compares a channel's name.

use std::sync::Arc;

use aggregate_pay::channels::PaymentChannel;
use aggregate_pay::{Channels, PayMethod};

use crate::error::AppError;

/// The channel that serves `method`, or why this server takes no payment by it (both 422): test
/// money outside demo mode (`METHOD_INVALID`), a method no configured channel serves
/// (`CHANNEL_UNAVAILABLE`).
pub fn channel_for(
    channels: &Channels,
    method: PayMethod,
) -> Result<Arc<dyn PaymentChannel>, AppError> {
    match channels.for_method(method) {
        Some(channel) => Ok(channel.clone()),
        None if method == PayMethod::Sandbox => Err(AppError::unprocessable(
            "METHOD_INVALID",
            "test money is accepted in demo mode only",
        )),
        None => Err(AppError::unprocessable(
            "CHANNEL_UNAVAILABLE",
            format!("{} is not configured on this server", method.as_str()),
        )),
    }
}

/// A channel and the method it pays with.
pub type Choice = (Arc<dyn PaymentChannel>, PayMethod);

/// What a request asks to pay with: an explicit `method` (served by `channel` when a channel is
/// named too); or the named `channel`'s method for the context — the first of `preferred` it
/// serves, else its first scan-to-pay method; or, with neither, the first of `preferred` any
/// channel serves. `None` when nothing is asked (the payer chooses later).
///
/// Errors: an unknown method (400 `METHOD_INVALID`); a channel id nothing is registered under
/// (422 `CHANNEL_UNAVAILABLE`); a method the named channel does not serve, or test money in live
/// mode (422 `METHOD_INVALID`); a channel with no method for the context (422
/// `METHOD_REQUIRED`).
pub fn resolve(
    channels: &Channels,
    channel: Option<&str>,
    method: Option<&str>,
    preferred: &[PayMethod],
) -> Result<Option<Choice>, AppError> {
    let method = method
        .map(|m| {
            PayMethod::parse(m).ok_or_else(|| {
                AppError::bad_request("METHOD_INVALID", format!("unknown pay method {m:?}"))
            })
        })
        .transpose()?;
    let named = channel
        .map(|id| {
            channels.get(id).cloned().ok_or_else(|| {
                AppError::unprocessable(
                    "CHANNEL_UNAVAILABLE",
                    format!("no channel {id:?} is configured on this server"),
                )
            })
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
        (Some(c), Some(m)) => Err(AppError::unprocessable(
            "METHOD_INVALID",
            format!("channel {} does not take {}", c.id(), m.as_str()),
        )),
        (Some(c), None) => {
            let methods = &c.capabilities().methods;
            let m = preferred
                .iter()
                .copied()
                .find(|m| methods.contains(m))
                .or_else(|| methods.iter().copied().find(|m| m.is_scan_to_pay()))
                .ok_or_else(|| {
                    AppError::unprocessable(
                        "METHOD_REQUIRED",
                        format!("say which method of channel {} to pay with", c.id()),
                    )
                })?;
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
            .map_err(|e| (e.status.as_u16(), e.code))
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
            channel_for(&live, PayMethod::Sandbox)
                .map(|c| c.id().to_owned())
                .map_err(|e| e.code),
            Err("METHOD_INVALID")
        );
    }
}
