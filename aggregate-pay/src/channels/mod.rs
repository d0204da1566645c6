//! Payment channels, one folder each.
//!
//! Status: only the Alipay signing primitives exist so far (issue #5 adds the `PaymentChannel`
//! trait and the `wechat`, `alipay` and `sandbox` channels).

#[cfg(feature = "alipay")]
pub mod alipay;
