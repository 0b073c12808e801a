//! Registry exports as users have them (DESIGN §8): CSV in UTF-8 (with or
//! without a byte-order mark) or GB18030, and columns named and labelled
//! in Chinese.
//!
//! - [`Encoding`]: how a CSV file's bytes are read — detected (`Auto`: a
//!   UTF-8 BOM or valid UTF-8 throughout is UTF-8, anything else GB18030,
//!   of which GBK is a subset) or forced;
//! - [`ColumnMap`]: the header map (a Chinese header → the English column
//!   of DESIGN §2.2, per table) and the label map (a Chinese value → the
//!   value tuopin uses, per column), built in from `columns/zh.toml` and
//!   extendable with a file of the same form.
//!
//! ```
//! use tuopin::io::exports::ColumnMap;
//! let map = ColumnMap::builtin();
//! assert_eq!(map.english("households", "户编号"), Some("household_id"));
//! assert_eq!(map.label("primary_cause", "因病"), Some("illness"));
//! let mine = ColumnMap::from_toml("[headers.households]\n\"家庭编号\" = \"household_id\"\n")?;
//! let both = map.extended(&mine);
//! assert_eq!(both.english("households", "家庭编号"), Some("household_id"));
//! # Ok::<(), tuopin::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::schema::table_spec;

/// The built-in map (DESIGN §8).
const ZH_TOML: &str = include_str!("../../columns/zh.toml");

/// How the bytes of a CSV file are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 when the file starts with a UTF-8 BOM or is valid UTF-8
    /// throughout, else GB18030.
    #[default]
    Auto,
    /// UTF-8 (a leading BOM is skipped).
    Utf8,
    /// GB18030 (and so GBK and GB2312).
    Gb18030,
}

impl FromStr for Encoding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Encoding> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Encoding::Auto),
            "utf-8" | "utf8" => Ok(Encoding::Utf8),
            "gb18030" | "gbk" | "gb2312" => Ok(Encoding::Gb18030),
            _ => Err(Error::InvalidArgument(format!(
                "unknown encoding {s:?} (expected auto, utf-8 or gb18030)"
            ))),
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The encoding of the CSV file `path` under `choice`.
pub(crate) fn detect(path: &Path, choice: Encoding) -> std::io::Result<Encoding> {
    if choice != Encoding::Auto {
        return Ok(choice);
    }
    let mut file = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut buf = vec![0u8; 1 << 20];
    // Bytes of a character cut by the end of the previous chunk.
    let mut carry: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(if carry.is_empty() {
                Encoding::Utf8
            } else {
                Encoding::Gb18030
            });
        }
        let mut chunk = std::mem::take(&mut carry);
        chunk.extend_from_slice(&buf[..n]);
        if first && chunk.starts_with(UTF8_BOM) {
            return Ok(Encoding::Utf8);
        }
        first = false;
        match std::str::from_utf8(&chunk) {
            Ok(_) => {}
            // Cut inside a character: keep its bytes for the next chunk.
            Err(e) if e.error_len().is_none() => carry = chunk[e.valid_up_to()..].to_vec(),
            Err(_) => return Ok(Encoding::Gb18030),
        }
    }
}

/// The file `path` as UTF-8 bytes (without a BOM) under `encoding` (not
/// `Auto`: see [`detect`]).
pub(crate) fn utf8_reader(
    path: &Path,
    encoding: Encoding,
) -> std::io::Result<Box<dyn Read + Send>> {
    let mut file = File::open(path)?;
    match encoding {
        Encoding::Gb18030 => Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::GB18030))
                .build(file),
        ))),
        _ => {
            let mut head = [0u8; 3];
            let n = file.read(&mut head)?;
            let skip = if head[..n] == *UTF8_BOM { 3 } else { 0 };
            file.seek(SeekFrom::Start(skip))?;
            Ok(Box::new(BufReader::with_capacity(1 << 20, file)))
        }
    }
}

/// How a dataset's sources are read: the CSV encoding and the column map
/// (the built-in one extended by the user's).
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    pub encoding: Encoding,
    pub map: std::sync::Arc<ColumnMap>,
}

/// The header and label maps of registry exports (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMap {
    /// Per table: header as exported → English column.
    #[serde(default)]
    headers: BTreeMap<String, BTreeMap<String, String>>,
    /// Per English column: label as exported → tuopin's value.
    #[serde(default)]
    labels: BTreeMap<String, BTreeMap<String, String>>,
    /// Where each entry stands in its file (`section\0key` → line), so
    /// that writing an export uses the first header or label a file lists
    /// for a column or value (一般贫困户 rather than 一般户).
    #[serde(skip)]
    order: BTreeMap<String, usize>,
}

impl ColumnMap {
    /// The built-in Chinese map (`crates/core/columns/zh.toml`).
    pub fn builtin() -> ColumnMap {
        static BUILTIN: OnceLock<ColumnMap> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                // A file of the crate, checked by a unit test.
                ColumnMap::from_toml(ZH_TOML).unwrap_or_default()
            })
            .clone()
    }

    /// A map from TOML text of the form of `zh.toml`; every table must be
    /// one of tuopin's and every header must map to one of its columns.
    pub fn from_toml(text: &str) -> Result<ColumnMap> {
        let mut map: ColumnMap =
            toml::from_str(text).map_err(|e| Error::InvalidArgument(format!("column map: {e}")))?;
        map.order = entry_order(text);
        for (table, headers) in &map.headers {
            let spec = table_spec(table).ok_or_else(|| {
                Error::InvalidArgument(format!("column map: [headers.{table}]: no such table"))
            })?;
            for (header, column) in headers {
                if spec.column(column).is_none() {
                    return Err(Error::InvalidArgument(format!(
                        "column map: [headers.{table}] {header:?} = {column:?}: \
                         {table} has no column {column:?}"
                    )));
                }
            }
        }
        Ok(map)
    }

    /// [`ColumnMap::from_toml`] of the file `path` (errors name it).
    pub fn from_file(path: &Path) -> Result<ColumnMap> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        ColumnMap::from_toml(&text).map_err(|e| match e {
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// This map with `other`'s entries added, `other` winning where both
    /// name the same header or label.
    pub fn extended(mut self, other: &ColumnMap) -> ColumnMap {
        for (table, headers) in &other.headers {
            let mine = self.headers.entry(table.clone()).or_default();
            mine.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for (column, labels) in &other.labels {
            let mine = self.labels.entry(column.clone()).or_default();
            mine.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        // The other file's entries come first when writing.
        let shift = other.order.values().max().map_or(0, |m| m + 1);
        for v in self.order.values_mut() {
            *v += shift;
        }
        self.order
            .extend(other.order.iter().map(|(k, v)| (k.clone(), *v)));
        self
    }

    /// The header an export uses for the English `column` of `table` (the
    /// first the map lists), or for a result column (`table` `None`): the
    /// first of households, members and regions that has one.
    ///
    /// ```
    /// let map = tuopin::ColumnMap::builtin();
    /// assert_eq!(map.exported_header(Some("regions"), "exit_year"), Some("出列年度"));
    /// assert_eq!(map.exported_header(None, "exit_year"), Some("脱贫年度"));
    /// assert_eq!(map.exported_header(None, "score"), None);
    /// ```
    pub fn exported_header(&self, table: Option<&str>, column: &str) -> Option<&str> {
        let tables: &[&str] = match table {
            Some(t) => &[t][..],
            None => &["households", "members", "regions"],
        };
        tables
            .iter()
            .find_map(|t| self.first_of(&format!("headers.{t}"), self.headers.get(*t)?, column))
    }

    /// The label an export uses for tuopin's `value` in `column` (the
    /// first the map lists).
    ///
    /// ```
    /// let map = tuopin::ColumnMap::builtin();
    /// assert_eq!(map.exported_label("category", "general"), Some("一般贫困户"));
    /// assert_eq!(map.exported_label("status", "exited"), Some("已脱贫"));
    /// ```
    pub fn exported_label(&self, column: &str, value: &str) -> Option<&str> {
        self.first_of(&format!("labels.{column}"), self.labels.get(column)?, value)
    }

    /// Of the keys of `entries` that map to `value`, the one its file
    /// lists first.
    fn first_of<'a>(
        &self,
        section: &str,
        entries: &'a BTreeMap<String, String>,
        value: &str,
    ) -> Option<&'a str> {
        entries
            .iter()
            .filter(|(_, v)| v.as_str() == value)
            .min_by_key(|(k, _)| {
                self.order
                    .get(&format!("{section}\0{k}"))
                    .copied()
                    .unwrap_or(usize::MAX)
            })
            .map(|(k, _)| k.as_str())
    }

    /// The English column of `table` that the exported `header` names.
    pub fn english(&self, table: &str, header: &str) -> Option<&str> {
        self.headers.get(table)?.get(header).map(String::as_str)
    }

    /// tuopin's value of the exported `label` in `column`.
    pub fn label(&self, column: &str, label: &str) -> Option<&str> {
        self.labels.get(column)?.get(label).map(String::as_str)
    }

    /// Every (label, value) of `column`.
    pub(crate) fn labels_of(&self, column: &str) -> Vec<(&str, &str)> {
        self.labels
            .get(column)
            .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
            .unwrap_or_default()
    }
}

/// The line of each `"key" = …` entry of a map file, by `section\0key`.
fn entry_order(text: &str) -> BTreeMap<String, usize> {
    let mut order = BTreeMap::new();
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if let Some((key, _)) = line.split_once('=') {
            let key = key.trim().trim_matches('"');
            order.entry(format!("{section}\0{key}")).or_insert(n);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_map_parses_and_names_real_columns() {
        let map = ColumnMap::from_toml(ZH_TOML).expect("zh.toml");
        assert_eq!(map, ColumnMap::builtin());
        assert_eq!(
            map.english("households", "县审定日期"),
            Some("county_approved_on")
        );
        assert_eq!(map.english("members", "务工时间"), Some("migrant_months"));
        assert_eq!(map.english("regions", "区划代码"), Some("code"));
        assert_eq!(map.label("status", "返贫"), Some("returned"));
        assert_eq!(map.label("category", "特困供养贫困户"), Some("tekun"));
        assert_eq!(map.label("primary_cause", "其它"), Some("other"));
        // Every label maps to a value its column allows.
        for (column, allowed) in [
            ("category", crate::schema::CATEGORIES),
            ("status", crate::schema::STATUSES),
            ("primary_cause", crate::schema::CAUSES),
            ("relation", crate::schema::RELATIONS),
            ("sex", crate::schema::SEXES),
            ("health", crate::schema::HEALTH),
            ("labor", crate::schema::LABOR),
            ("poor_county", crate::schema::POOR_COUNTY),
        ] {
            let labels = map.labels_of(column);
            assert!(!labels.is_empty(), "{column}");
            for (label, value) in labels {
                assert!(allowed.contains(&value), "{column}: {label} → {value}");
            }
        }
    }

    #[test]
    fn bad_maps_are_refused_naming_the_entry() {
        let err = ColumnMap::from_toml("[headers.households]\n\"x\" = \"nope\"\n").unwrap_err();
        assert!(err.to_string().contains("no column \"nope\""), "{err}");
        let err = ColumnMap::from_toml("[headers.people]\n\"x\" = \"y\"\n").unwrap_err();
        assert!(err.to_string().contains("no such table"), "{err}");
        assert!(ColumnMap::from_toml("[other]\n").is_err());
    }

    #[test]
    fn encodings_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let (gbk, _, _) = encoding_rs::GB18030.encode("户编号,年度\nH1,2016\n");
        let utf8 = write("u.csv", "户编号,年度\n".as_bytes());
        let bom = write("b.csv", &[UTF8_BOM, "户编号\n".as_bytes()].concat());
        let gb = write("g.csv", &gbk);
        assert_eq!(detect(&utf8, Encoding::Auto).unwrap(), Encoding::Utf8);
        assert_eq!(detect(&bom, Encoding::Auto).unwrap(), Encoding::Utf8);
        assert_eq!(detect(&gb, Encoding::Auto).unwrap(), Encoding::Gb18030);
        assert_eq!(detect(&gb, Encoding::Utf8).unwrap(), Encoding::Utf8);
        let read = |p: &Path, e| {
            let mut s = String::new();
            utf8_reader(p, e).unwrap().read_to_string(&mut s).unwrap();
            s
        };
        assert_eq!(read(&bom, Encoding::Utf8), "户编号\n");
        assert_eq!(read(&gb, Encoding::Gb18030), "户编号,年度\nH1,2016\n");
        assert!("GBK".parse::<Encoding>().unwrap() == Encoding::Gb18030);
        assert!("latin1".parse::<Encoding>().is_err());
    }
}
