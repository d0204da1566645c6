//! The table format shared by the trade bill and the fund-flow bill, read a line at a time.
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
use std::io::BufRead;

use crate::{Error, Fen};

/// A table being read: its named columns, then one record per call, then the named summary.
/// Only the current line is held in memory.
pub(crate) struct TableReader<R> {
    lines: std::io::Lines<R>,
    columns: Columns,
    width: usize,
    records: usize,
    summary: Option<Summary>,
}

/// The header: column names to positions.
pub(crate) struct Columns(HashMap<String, usize>);

/// The summary: names to values.
pub(crate) struct Summary(HashMap<String, String>);

impl<R: BufRead> TableReader<R> {
    /// Reads the header.
    pub(crate) fn new(reader: R) -> Result<Self, Error> {
        let mut lines = reader.lines();
        let header = next_line(&mut lines)?.ok_or_else(|| Error::decode("bill", "empty file"))?;
        let header = header.strip_prefix('\u{feff}').unwrap_or(&header);
        let names: Vec<String> = header.split(',').map(|h| h.trim().to_owned()).collect();
        Ok(TableReader {
            lines,
            width: names.len(),
            columns: Columns(names.into_iter().enumerate().map(|(i, h)| (h, i)).collect()),
            records: 0,
            summary: None,
        })
    }

    /// The header's columns.
    pub(crate) fn columns(&self) -> &Columns {
        &self.columns
    }

    /// The next record; `None` once the summary has been read (it is then in
    /// [`summary`](Self::summary)). A file that ends before its summary is an error.
    pub(crate) fn next_record(&mut self) -> Option<Result<Vec<String>, Error>> {
        if self.summary.is_some() {
            return None;
        }
        let line = match next_line(&mut self.lines) {
            Ok(Some(line)) => line,
            Ok(None) => return Some(Err(Error::decode("bill", "summary header missing"))),
            Err(e) => return Some(Err(e)),
        };
        if !line.starts_with('`') {
            return match self.read_summary(&line) {
                Ok(()) => None,
                Err(e) => Some(Err(e)),
            };
        }
        let record = split_record(&line);
        self.records += 1;
        if record.len() != self.width {
            return Some(Err(Error::decode(
                "bill",
                format!(
                    "record {} has {} fields, the header has {}",
                    self.records,
                    record.len(),
                    self.width
                ),
            )));
        }
        Some(Ok(record))
    }

    fn read_summary(&mut self, header: &str) -> Result<(), Error> {
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let values = split_record(
            &next_line(&mut self.lines)?.ok_or_else(|| Error::decode("bill", "summary missing"))?,
        );
        if values.len() != names.len() {
            return Err(Error::decode("bill", "summary does not match its header"));
        }
        self.summary = Some(Summary(
            names.into_iter().map(str::to_owned).zip(values).collect(),
        ));
        Ok(())
    }

    /// The summary, once every record has been read.
    pub(crate) fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }
}

/// The next non-empty line, without its line end.
fn next_line<R: BufRead>(lines: &mut std::io::Lines<R>) -> Result<Option<String>, Error> {
    for line in lines.by_ref() {
        let mut line = line.map_err(|e| Error::decode("bill", format!("cannot read: {e}")))?;
        line.truncate(line.trim_end().len());
        if !line.is_empty() {
            return Ok(Some(line));
        }
    }
    Ok(None)
}

fn split_record(line: &str) -> Vec<String> {
    line.strip_prefix('`')
        .unwrap_or(line)
        .split(",`")
        .map(str::to_owned)
        .collect()
}

impl Columns {
    /// The value of the first of `names` (older and newer bill layouts name some columns
    /// differently) in `record`; empty values read as `None`.
    pub(crate) fn field<'r>(&self, record: &'r [String], names: &[&str]) -> Option<&'r str> {
        names
            .iter()
            .find_map(|n| self.0.get(*n))
            .and_then(|&i| record.get(i))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required text column.
    pub(crate) fn text(&self, record: &[String], names: &[&str]) -> Result<String, Error> {
        self.field(record, names)
            .map(str::to_owned)
            .ok_or_else(|| Error::decode(names[0], "missing"))
    }

    /// An optional text column.
    pub(crate) fn opt_text(&self, record: &[String], names: &[&str]) -> Option<String> {
        self.field(record, names).map(str::to_owned)
    }

    /// An optional amount column in yuan.
    pub(crate) fn opt_yuan(&self, record: &[String], names: &[&str]) -> Result<Option<Fen>, Error> {
        self.field(record, names)
            .map(|v| yuan(names[0], v))
            .transpose()
    }

    /// An optional signed amount column in yuan (fees are negative on refund records), in fen.
    pub(crate) fn opt_signed_yuan(
        &self,
        record: &[String],
        names: &[&str],
    ) -> Result<Option<i64>, Error> {
        self.field(record, names)
            .map(|v| signed_yuan(names[0], v))
            .transpose()
    }
}

impl Summary {
    fn value(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .find_map(|n| self.0.get(*n))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A signed amount in yuan, in fen.
    pub(crate) fn signed_yuan(&self, names: &[&str]) -> Result<Option<i64>, Error> {
        self.value(names)
            .map(|v| signed_yuan(names[0], v))
            .transpose()
    }

    /// An amount in yuan.
    pub(crate) fn yuan(&self, names: &[&str]) -> Result<Option<Fen>, Error> {
        self.value(names).map(|v| yuan(names[0], v)).transpose()
    }

    /// A count.
    pub(crate) fn count(&self, name: &str) -> Result<Option<u64>, Error> {
        self.value(&[name])
            .map(|v| {
                v.parse::<Fen>()
                    .map(Fen::as_u64)
                    .map_err(|e| Error::decode(name, e.to_string()))
            })
            .transpose()
    }
}

/// Reads every record of `text` with `row`, then the summary with `summary`.
pub(crate) fn read_all<T, S>(
    text: &str,
    row: impl Fn(&Columns, &[String]) -> Result<T, Error>,
    summary: impl FnOnce(&Summary) -> Result<S, Error>,
) -> Result<(Vec<T>, S), Error> {
    let mut table = TableReader::new(text.as_bytes())?;
    let mut rows = Vec::new();
    while let Some(record) = table.next_record() {
        rows.push(row(table.columns(), &record?)?);
    }
    let s = table
        .summary()
        .ok_or_else(|| Error::decode("bill", "summary missing"))?;
    Ok((rows, summary(s)?))
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
