//! Statistical division codes (统计用区划代码) and resident ID numbers.
//!
//! A region code has 12 digits `PPCCDDTTTVVV`: province (2), city (2),
//! county (2), township (3), village (3). Its [`Level`] is that of its lowest
//! non-zero segment; its parent zeroes that segment; a village rolls up to
//! each level above by zeroing the suffix below that level.
//!
//! ```
//! use tuopin::codes::{Level, RegionCode};
//! let v = RegionCode::parse("130102001002").unwrap();
//! assert_eq!(v.level(), Level::Village);
//! assert_eq!(v.parent().unwrap().as_str(), "130102001000");
//! assert_eq!(v.roll_up(Level::County).unwrap().as_str(), "130102000000");
//! assert!(RegionCode::parse("13010200100").is_err()); // 11 digits
//! ```
//!
//! The same logic is available inside DataFusion queries: as plain SQL
//! expressions (`roll_up_sql`, `level_sql`, crate-internal) which every
//! engine can run, and as the scalar UDFs `region_level(code)`,
//! `region_parent(code)` and `id_number_valid(id)` registered on every
//! [`crate::Engine`] session ([`crate::functions`]).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Administrative level of a region, from the province down to the village.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// 省 — `PP0000000000`.
    Province,
    /// 市 — `PPCC00000000`.
    City,
    /// 县 — `PPCCDD000000`.
    County,
    /// 乡镇 — `PPCCDDTTT000`.
    Township,
    /// 村 — `PPCCDDTTTVVV`.
    Village,
}

impl Level {
    /// All levels, coarsest first.
    pub const ALL: [Level; 5] = [
        Level::Province,
        Level::City,
        Level::County,
        Level::Township,
        Level::Village,
    ];

    /// The lower-case name used in tables and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Township => "township",
            Level::Village => "village",
        }
    }

    /// The level's rank: 1 for a province … 5 for a village (coarsest
    /// first), as the SQL of [`level_rank_sql`] gives it.
    pub fn rank(self) -> u8 {
        self as u8 + 1
    }

    /// `10^k`, `k` the code's trailing digits below this level: a 12-digit
    /// code held as an integer rolls up to this level as `code - code % unit`
    /// ([`roll_up_int_sql`] in SQL; 1 for a village).
    pub fn code_unit(self) -> i64 {
        10i64.pow((12 - self.prefix_len()) as u32)
    }

    /// How many leading digits of the code identify a unit of this level.
    pub fn prefix_len(self) -> usize {
        match self {
            Level::Province => 2,
            Level::City => 4,
            Level::County => 6,
            Level::Township => 9,
            Level::Village => 12,
        }
    }

    /// The name of the roll-up column of `household_facts` for this level
    /// (`province_code`, …, `village_code`).
    pub fn code_column(self) -> &'static str {
        match self {
            Level::Province => "province_code",
            Level::City => "city_code",
            Level::County => "county_code",
            Level::Township => "township_code",
            Level::Village => "village_code",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown level `{s}` (expected province, city, county, township or village)"
                ))
            })
    }
}

/// One level or every level at once: what `--level` (CLI) and `level=`
/// (Python) take — `province`, `city`, `county`, `township`, `village` or
/// `all`.
///
/// ```
/// use tuopin::{Level, LevelSelection};
/// let one: LevelSelection = "county".parse().unwrap();
/// assert_eq!(one.level(), Some(Level::County));
/// assert_eq!("all".parse::<LevelSelection>().unwrap().level(), None);
/// assert!("district".parse::<LevelSelection>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LevelSelection {
    /// One level.
    One(Level),
    /// Every level, in one GROUPING SETS query with a `level` column.
    All,
}

impl LevelSelection {
    /// The level, or `None` for every level (what the engine's calls take).
    pub fn level(self) -> Option<Level> {
        match self {
            LevelSelection::One(l) => Some(l),
            LevelSelection::All => None,
        }
    }
}

impl From<Option<Level>> for LevelSelection {
    fn from(level: Option<Level>) -> Self {
        level.map_or(LevelSelection::All, LevelSelection::One)
    }
}

impl fmt::Display for LevelSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LevelSelection::One(l) => l.fmt(f),
            LevelSelection::All => f.write_str("all"),
        }
    }
}

impl FromStr for LevelSelection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "all" {
            return Ok(LevelSelection::All);
        }
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .map(LevelSelection::One)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown level `{s}` (expected province, city, county, township, village or all)"
                ))
            })
    }
}

/// Why a string is not a region code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not exactly 12 characters.
    #[error("region code `{0}` must have 12 digits")]
    Length(String),
    /// A character other than an ASCII digit.
    #[error("region code `{0}` must contain only digits")]
    NotDigits(String),
    /// The province segment is `00`.
    #[error("region code `{0}` has province 00")]
    NoProvince(String),
    /// A non-zero segment below a zero one (e.g. a village under county 00).
    #[error("region code `{0}` has a non-zero segment below a zero one")]
    Gap(String),
}

/// A validated 12-digit statistical division code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(String);

impl RegionCode {
    /// Parse and validate a code.
    pub fn parse(s: &str) -> std::result::Result<Self, CodeError> {
        check_code(s)?;
        Ok(RegionCode(s.to_string()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The level of the unit.
    pub fn level(&self) -> Level {
        level_of(&self.0)
    }

    /// The code of the unit directly above, `None` for a province.
    pub fn parent(&self) -> Option<RegionCode> {
        let level = self.level();
        let above = Level::ALL.into_iter().rev().find(|l| *l < level)?;
        Some(RegionCode(zero_below(&self.0, above)))
    }

    /// The code of the unit of `level` that contains this one; `None` when
    /// `level` is finer than this unit's own level.
    pub fn roll_up(&self, level: Level) -> Option<RegionCode> {
        (level <= self.level()).then(|| RegionCode(zero_below(&self.0, level)))
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_code(s: &str) -> std::result::Result<(), CodeError> {
    if s.len() != 12 {
        return Err(CodeError::Length(s.to_string()));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::NotDigits(s.to_string()));
    }
    if &s[0..2] == "00" {
        return Err(CodeError::NoProvince(s.to_string()));
    }
    // Segments must be non-zero down to the level, zero below it.
    let level = level_of(s);
    let segments = [(2, 4), (4, 6), (6, 9), (9, 12)];
    for (i, (a, b)) in segments.into_iter().enumerate() {
        let zero = s[a..b].bytes().all(|c| c == b'0');
        let within = Level::ALL[i + 1] <= level;
        if within && zero {
            return Err(CodeError::Gap(s.to_string()));
        }
    }
    Ok(())
}

/// The level of `code` when it is a well-formed region code (the test of
/// [`RegionCode::parse`]: 12 ASCII digits, province non-zero, no zero
/// segment above the lowest non-zero one), else `None` — read from the
/// bytes, without allocating: the validation functions call it once per
/// row.
pub(crate) fn code_level(code: &[u8]) -> Option<Level> {
    let digits: &[u8; 12] = code.try_into().ok()?;
    if !digits.iter().all(u8::is_ascii_digit) || digits[..2] == *b"00" {
        return None;
    }
    let set = |a: usize, b: usize| digits[a..b].iter().any(|&c| c != b'0');
    let (city, county, township, village) = (set(2, 4), set(4, 6), set(6, 9), set(9, 12));
    // The lowest non-zero segment gives the level; every segment above it
    // must be non-zero too.
    if village {
        (city && county && township).then_some(Level::Village)
    } else if township {
        (city && county).then_some(Level::Township)
    } else if county {
        city.then_some(Level::County)
    } else if city {
        Some(Level::City)
    } else {
        Some(Level::Province)
    }
}

/// Level of a 12-digit string: that of its lowest non-zero segment.
fn level_of(s: &str) -> Level {
    let nonzero = |a: usize, b: usize| s[a..b].bytes().any(|c| c != b'0');
    if nonzero(9, 12) {
        Level::Village
    } else if nonzero(6, 9) {
        Level::Township
    } else if nonzero(4, 6) {
        Level::County
    } else if nonzero(2, 4) {
        Level::City
    } else {
        Level::Province
    }
}

fn zero_below(s: &str, level: Level) -> String {
    let n = level.prefix_len();
    format!("{}{}", &s[..n], "0".repeat(12 - n))
}

/// SQL expression rolling the 12-digit code in `column` up to `level`
/// (`concat(substr(col, 1, n), '000…')`). Plain SQL, so it runs on any
/// DataFusion engine (and Ballista) without a UDF.
pub(crate) fn roll_up_sql(column: &str, level: Level) -> String {
    let n = level.prefix_len();
    if n == 12 {
        return column.to_string();
    }
    format!("concat(substr({column}, 1, {n}), '{}')", "0".repeat(12 - n))
}

/// SQL expression rolling a code held as a `BIGINT` in `column` up to
/// `level` (`col - col % 10^k`). Equal to [`roll_up_sql`] on the 12-digit
/// text (a valid code never starts with `0`), and much cheaper to compute,
/// hash and compare, so the metrics plans group on these integer keys.
pub(crate) fn roll_up_int_sql(column: &str, level: Level) -> String {
    match level.code_unit() {
        1 => column.to_string(),
        unit => format!("({column} - {column} % {unit})"),
    }
}

/// SQL expression giving the level name of the (valid) code in `column`.
pub(crate) fn level_sql(column: &str) -> String {
    format!(
        "CASE WHEN substr({c}, 10, 3) <> '000' THEN 'village' \
         WHEN substr({c}, 7, 3) <> '000' THEN 'township' \
         WHEN substr({c}, 5, 2) <> '00' THEN 'county' \
         WHEN substr({c}, 3, 2) <> '00' THEN 'city' ELSE 'province' END",
        c = column
    )
}

/// SQL expression giving the rank of the level name in `column`: 1 for a
/// province … 5 for a village ([`Level::rank`]), to order rows coarsest
/// level first.
pub(crate) fn level_rank_sql(column: &str) -> String {
    format!(
        "CASE {column} WHEN 'province' THEN 1 WHEN 'city' THEN 2 WHEN 'county' THEN 3 WHEN 'township' THEN 4 ELSE 5 END"
    )
}

/// SQL expression giving the rank ([`Level::rank`]) of the code held as a
/// `BIGINT` in `column`: the level of its lowest non-zero segment. Equal
/// to [`level_rank_sql`] of [`level_sql`] on the text of a valid code,
/// without reading text.
pub(crate) fn level_rank_int_sql(column: &str) -> String {
    let arms: String = Level::ALL
        .windows(2)
        .rev()
        .map(|w| {
            let (parent, level) = (w[0], w[1]);
            format!(
                " WHEN {column} % {} <> 0 THEN {}",
                parent.code_unit(),
                level.rank()
            )
        })
        .collect();
    format!("CASE{arms} ELSE {} END", Level::Province.rank())
}

/// SQL expression giving the level name of the rank in `column`
/// ([`Level::rank`]; the inverse of [`level_rank_sql`]).
pub(crate) fn level_of_rank_sql(column: &str) -> String {
    let arms: String = Level::ALL
        .iter()
        .filter(|l| **l != Level::Village)
        .map(|l| format!(" WHEN {} THEN '{}'", l.rank(), l.as_str()))
        .collect();
    format!("CASE {column}{arms} ELSE '{}' END", Level::Village.as_str())
}

/// SQL predicate: true when the text in `column` is a well-formed region
/// code (12 digits, province non-zero, no non-zero segment below a zero
/// one) — the `region_code_valid` function, [`RegionCode::parse`] per row
/// (one pass over the text, where the regular expression and eight
/// `substr` comparisons it replaced took a fifth of validation).
pub(crate) fn valid_code_sql(column: &str) -> String {
    format!("region_code_valid({column})")
}

// ---------------------------------------------------------------------------
// Resident ID numbers (GB 11643-1999, ISO 7064 MOD 11-2)
// ---------------------------------------------------------------------------

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: [u8; 11] = *b"10X98765432";

/// The check character of the first 17 digits of a resident ID number,
/// `None` if they are not 17 ASCII digits.
///
/// ```
/// assert_eq!(tuopin::codes::id_check_char("11010519491231002"), Some('X'));
/// ```
pub fn id_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(char::from(ID_CHECK[(sum % 11) as usize]))
}

/// True when `id` is an 18-character resident ID number whose last
/// character is the right check character (upper- or lower-case `x`).
///
/// ```
/// assert!(tuopin::codes::id_number_valid("11010519491231002X"));
/// assert!(!tuopin::codes::id_number_valid("110105194912310021"));
/// ```
pub fn id_number_valid(id: &str) -> bool {
    id_bytes_valid(id.as_bytes())
}

/// [`id_number_valid`] on the bytes of the text, without a check of
/// UTF-8: 17 ASCII digits and an ASCII check character.
pub(crate) fn id_bytes_valid(id: &[u8]) -> bool {
    let Ok(id) = <&[u8; 18]>::try_from(id) else {
        return false;
    };
    if !id[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = id[..17]
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    id[17].to_ascii_uppercase() == ID_CHECK[(sum % 11) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_roll_up_zeroes_the_suffix() {
        assert_eq!(roll_up_int_sql("v", Level::County), "(v - v % 1000000)");
        assert_eq!(roll_up_int_sql("v", Level::Village), "v");
    }

    #[test]
    fn code_level_agrees_with_parse_on_every_segment_pattern() {
        // Every combination of zero and non-zero segments (a non-zero one
        // written with a zero digit inside it too), plus malformed text.
        let mut codes: Vec<String> = Vec::new();
        for province in ["00", "13", "10"] {
            for mask in 0..16u32 {
                for filler in ["1", "0"] {
                    let seg = |i: u32, width: usize| {
                        if mask & (1 << i) == 0 {
                            "0".repeat(width)
                        } else {
                            format!("{}9", filler.repeat(width - 1))
                        }
                    };
                    codes.push(format!(
                        "{province}{}{}{}{}",
                        seg(0, 2),
                        seg(1, 2),
                        seg(2, 3),
                        seg(3, 3)
                    ));
                }
            }
        }
        codes.extend(
            [
                "",
                "13010200100",
                "1301020010011",
                "13010200100a",
                "１30102001001",
                "13 102001001",
            ]
            .map(String::from),
        );
        let mut valid = 0;
        for code in &codes {
            let parsed = RegionCode::parse(code).ok().map(|c| c.level());
            assert_eq!(code_level(code.as_bytes()), parsed, "{code:?}");
            valid += usize::from(parsed.is_some());
        }
        // Per valid province: one code per level (no gaps), each with two
        // fillers.
        assert_eq!(valid, 2 * 5 * 2);
    }

    #[test]
    fn levels_of_each_segment() {
        let cases = [
            ("130000000000", Level::Province),
            ("130100000000", Level::City),
            ("130102000000", Level::County),
            ("130102001000", Level::Township),
            ("130102001002", Level::Village),
        ];
        for (code, level) in cases {
            assert_eq!(RegionCode::parse(code).unwrap().level(), level, "{code}");
        }
    }

    #[test]
    fn parents_zero_the_lowest_segment() {
        let chain = [
            "130102001002",
            "130102001000",
            "130102000000",
            "130100000000",
            "130000000000",
        ];
        for pair in chain.windows(2) {
            let c = RegionCode::parse(pair[0]).unwrap();
            assert_eq!(c.parent().unwrap().as_str(), pair[1]);
        }
        assert!(RegionCode::parse("130000000000")
            .unwrap()
            .parent()
            .is_none());
    }

    #[test]
    fn roll_up_to_every_level_and_not_below() {
        let v = RegionCode::parse("131125203201").unwrap();
        assert_eq!(v.roll_up(Level::Province).unwrap().as_str(), "130000000000");
        assert_eq!(v.roll_up(Level::City).unwrap().as_str(), "131100000000");
        assert_eq!(v.roll_up(Level::Township).unwrap().as_str(), "131125203000");
        assert_eq!(v.roll_up(Level::Village).unwrap(), v);
        let county = RegionCode::parse("131125000000").unwrap();
        assert!(county.roll_up(Level::Village).is_none());
    }

    #[test]
    fn malformed_codes_are_refused() {
        assert!(matches!(
            RegionCode::parse("1301020010"),
            Err(CodeError::Length(_))
        ));
        assert!(matches!(
            RegionCode::parse("13010200100A"),
            Err(CodeError::NotDigits(_))
        ));
        assert!(matches!(
            RegionCode::parse("000102001002"),
            Err(CodeError::NoProvince(_))
        ));
        // Village under township 000.
        assert!(matches!(
            RegionCode::parse("130102000002"),
            Err(CodeError::Gap(_))
        ));
        // County under city 00.
        assert!(matches!(
            RegionCode::parse("130002000000"),
            Err(CodeError::Gap(_))
        ));
        assert!(RegionCode::parse("").is_err());
        assert!(RegionCode::parse("１３０１０２００１００２").is_err()); // full-width digits
    }

    #[test]
    fn level_names_round_trip() {
        for l in Level::ALL {
            assert_eq!(l.as_str().parse::<Level>().unwrap(), l);
        }
        assert!("district".parse::<Level>().is_err());
    }

    #[test]
    fn id_check_digit_per_gb11643() {
        // The standard's own example.
        assert_eq!(id_check_char("11010519491231002"), Some('X'));
        assert!(id_number_valid("11010519491231002X"));
        assert!(id_number_valid("11010519491231002x"));
        // Hand-computed: 130102198001010013 — weights sum mod 11.
        let first = "13010219800101001";
        let sum: u32 = first
            .bytes()
            .zip(ID_WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        let expected = ID_CHECK[(sum % 11) as usize] as char;
        assert!(id_number_valid(&format!("{first}{expected}")));
        // Every other check character is wrong.
        for c in "0123456789X".chars().filter(|c| *c != expected) {
            assert!(!id_number_valid(&format!("{first}{c}")), "{c}");
        }
        assert!(!id_number_valid("1101051949123100"));
        assert!(!id_number_valid("11010519491231002XX"));
        assert!(!id_number_valid("1101051949123A002X"));
        // A non-ASCII last character of the right byte length.
        assert!(!id_number_valid("1101051949123100é"));
        assert!(!id_bytes_valid(&[b'1'; 19]));
    }
}
