//! Money: [`Fen`] is `pay-money`'s, the one money type of the family (`wechat_pay::Fen`,
//! `alipay::Fen` and `aggregate_pay::Fen` are the same type).
//!
//! WeChat Pay sends amounts as decimal integers of fen (`total_fee=1`, the form of `Display`
//! and `FromStr`) and the downloadable bills as yuan with two decimals (`` `0.01``,
//! [`Fen::from_yuan_str`]). Both are parsed strictly; nothing here ever goes through a float,
//! and no text is compared where numbers should be.

pub use pay_money::{Fen, ParseFenError};
