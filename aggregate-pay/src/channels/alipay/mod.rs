//! The Alipay channel (feature `alipay`).
//!
//! Status: the signing primitives ([`rsa2`]) are in place and used by the sandbox emulator; the
//! gateway client and the `PaymentChannel` implementation arrive with issue #5.

pub mod rsa2;
