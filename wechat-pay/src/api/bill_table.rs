//! The table format shared by the trade bill and the fund-flow bill.
//!
//! ```text
//! 交易时间,公众账号ID,…           <- header
//! `2014-11-10 16:33:45,`wx24…     <- one line per record, every field prefixed with a backtick
//! 总交易单数,应结订单总金额,…       <- summary header
//! `48,`5.76,…                     <- summary
//! ```
//!
//! This is not RFC 4180 CSV: fields are never quoted and a product name may contain a comma, so
//! records are split on the backtick that starts every field (",`"), not on bare commas.

use std::collections::HashMap;

use crate::{Error, Fen};

/// A parsed table: named columns, records, and the named summary.
pub(crate) struct Table<'a> {
    columns: HashMap<&'a str, usize>,
    pub(crate) records: Vec<Vec<&'a str>>,
    summary: HashMap<&'a str, &'a str>,
}

/// Splits `text` into header, records and summary.
pub(crate) fn parse(text: &str) -> Result<Table<'_>, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().map(str::trim_end).filter(|l| !l.is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| Error::decode("bill", "empty file"))?
        .split(',')
        .map(str::trim)
        .collect();
    let mut records = Vec::new();
    let mut summary_header = None;
    for line in lines.by_ref() {
        if line.starts_with('`') {
            let record = split_record(line);
            if record.len() != header.len() {
                return Err(Error::decode(
                    "bill",
                    format!(
                        "record {} has {} fields, the header has {}",
                        records.len() + 1,
                        record.len(),
                        header.len()
                    ),
                ));
            }
            records.push(record);
        } else {
            summary_header = Some(line);
            break;
        }
    }
    let summary_header: Vec<&str> = summary_header
        .ok_or_else(|| Error::decode("bill", "summary header missing"))?
        .split(',')
        .map(str::trim)
        .collect();
    let summary_values = split_record(
        lines
            .next()
            .ok_or_else(|| Error::decode("bill", "summary missing"))?,
    );
    if summary_values.len() != summary_header.len() {
        return Err(Error::decode("bill", "summary does not match its header"));
    }
    Ok(Table {
        columns: header.iter().enumerate().map(|(i, h)| (*h, i)).collect(),
        records,
        summary: summary_header.into_iter().zip(summary_values).collect(),
    })
}

fn split_record(line: &str) -> Vec<&str> {
    line.strip_prefix('`').unwrap_or(line).split(",`").collect()
}

impl<'a> Table<'a> {
    /// The value of the first of `names` (older and newer bill layouts name some columns
    /// differently) in `record`; empty values read as `None`.
    pub(crate) fn field(&self, record: &[&'a str], names: &[&str]) -> Option<&'a str> {
        names
            .iter()
            .find_map(|n| self.columns.get(n))
            .and_then(|&i| record.get(i).copied())
            .filter(|v| !v.is_empty())
    }

    /// A required text column.
    pub(crate) fn text(&self, record: &[&'a str], names: &[&str]) -> Result<String, Error> {
        self.field(record, names)
            .map(str::to_owned)
            .ok_or_else(|| Error::decode(names[0], "missing"))
    }

    /// An optional text column.
    pub(crate) fn opt_text(&self, record: &[&'a str], names: &[&str]) -> Option<String> {
        self.field(record, names).map(str::to_owned)
    }

    /// An optional amount column in yuan.
    pub(crate) fn opt_yuan(
        &self,
        record: &[&'a str],
        names: &[&str],
    ) -> Result<Option<Fen>, Error> {
        self.field(record, names)
            .map(|v| yuan(names[0], v))
            .transpose()
    }

    /// An optional signed amount column in yuan (fees are negative on refund records), in fen.
    pub(crate) fn opt_signed_yuan(
        &self,
        record: &[&'a str],
        names: &[&str],
    ) -> Result<Option<i64>, Error> {
        self.field(record, names)
            .map(|v| signed_yuan(names[0], v))
            .transpose()
    }

    /// A signed summary amount in yuan, in fen.
    pub(crate) fn summary_signed_yuan(&self, names: &[&str]) -> Result<Option<i64>, Error> {
        names
            .iter()
            .find_map(|n| self.summary.get(n))
            .filter(|v| !v.is_empty())
            .map(|v| signed_yuan(names[0], v))
            .transpose()
    }

    /// A summary amount in yuan.
    pub(crate) fn summary_yuan(&self, names: &[&str]) -> Result<Option<Fen>, Error> {
        names
            .iter()
            .find_map(|n| self.summary.get(n))
            .filter(|v| !v.is_empty())
            .map(|v| yuan(names[0], v))
            .transpose()
    }

    /// A summary count.
    pub(crate) fn summary_count(&self, name: &str) -> Result<Option<u64>, Error> {
        self.summary
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<Fen>()
                    .map(Fen::as_u64)
                    .map_err(|e| Error::decode(name, e.to_string()))
            })
            .transpose()
    }
}

fn yuan(name: &str, v: &str) -> Result<Fen, Error> {
    Fen::from_yuan_str(v).map_err(|e| Error::decode(name, e.to_string()))
}

/// `-0.02` → `-2`: a sign, then an exact yuan amount.
fn signed_yuan(name: &str, v: &str) -> Result<i64, Error> {
    let (negative, magnitude) = match v.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, v),
    };
    let fen = i64::try_from(yuan(name, magnitude)?.as_u64())
        .map_err(|_| Error::decode(name, "amount out of range"))?;
    Ok(if negative { -fen } else { fen })
}
