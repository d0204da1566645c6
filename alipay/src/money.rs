//! Money: [`Fen`] is `pay-money`'s, the one money type of the family (`alipay::Fen`,
//! `wechat_pay::Fen` and `aggregate_pay::Fen` are the same type). Alipay writes amounts as yuan
//! with up to two decimals (`"0.01"`): every amount field of this crate's requests and answers
//! is read and written in that form (`#[serde(with = "pay_money::yuan")]`), exactly — no float,
//! no rounding — and nowhere else. `Display` writes integer fen; write yuan with
//! [`Fen::to_yuan_string`].

pub use pay_money::{Fen, ParseFenError};
