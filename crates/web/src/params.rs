//! Query parameters, checked: every value a request carries is parsed
//! here into a typed value or refused with a [`WebError::BadParameter`]
//! naming it. Nothing from a request reaches SQL as text except through
//! these checks (codes are digits, household ids are quoted literals).

use tuopin::codes::RegionCode;
use tuopin::Level;

use crate::error::{Result, WebError};

/// At most this many parameters in one query string.
pub const MAX_PARAMETERS: usize = 64;
/// At most this many bytes in one query string.
pub const MAX_QUERY_BYTES: usize = 4096;

/// The parameters of a query string, in order (a name may repeat).
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parse a raw query string (`None`: no query).
    pub fn parse(raw: Option<&str>) -> Result<Params> {
        let raw = raw.unwrap_or_default();
        if raw.len() > MAX_QUERY_BYTES {
            return Err(WebError::bad(
                "query",
                format!("longer than {MAX_QUERY_BYTES} bytes"),
            ));
        }
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if pairs.len() > MAX_PARAMETERS {
            return Err(WebError::bad(
                "query",
                format!("more than {MAX_PARAMETERS} parameters"),
            ));
        }
        Ok(Params(pairs))
    }

    /// The last value of `name`, if given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `year`: one of `years` (the registry's); `default` when absent.
    pub fn year(&self, years: &[i32], default: i32) -> Result<i32> {
        let Some(text) = self.get("year") else {
            return Ok(default);
        };
        let year: i32 = text
            .trim()
            .parse()
            .map_err(|_| WebError::bad("year", format!("{:?} is not a year", short(text))))?;
        if !years.contains(&year) {
            return Err(WebError::bad(
                "year",
                format!(
                    "{year} has no household snapshot (the registry has {})",
                    years
                        .iter()
                        .map(i32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(year)
    }

    /// A level (`province` … `village`) under `name`.
    pub fn level(&self, name: &str) -> Result<Option<Level>> {
        self.get(name)
            .map(|t| {
                t.parse::<Level>().map_err(|_| {
                    WebError::bad(
                        name,
                        format!(
                            "{:?} is not a level (province, city, county, township, village)",
                            short(t)
                        ),
                    )
                })
            })
            .transpose()
    }

    /// A positive whole number under `name` (`default` when absent).
    pub fn page(&self, name: &str, default: usize) -> Result<usize> {
        match self.get(name) {
            None => Ok(default),
            Some(t) => t
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| WebError::bad(name, format!("{:?} is not a page number", short(t)))),
        }
    }

    /// `name` if it is one of `allowed`.
    pub fn choice(&self, name: &str, allowed: &[&str]) -> Result<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(t) if allowed.contains(&t) => Ok(Some(t.to_string())),
            Some(t) => Err(WebError::bad(
                name,
                format!("{:?} is not one of {}", short(t), allowed.join(", ")),
            )),
        }
    }

    /// `format`: `json` (default) or `csv`.
    pub fn csv(&self) -> Result<bool> {
        Ok(self.choice("format", &["json", "csv"])?.as_deref() == Some("csv"))
    }
}

/// A region code (twelve digits) given as the parameter `name`.
pub fn region_code(name: &str, text: &str) -> Result<RegionCode> {
    RegionCode::parse(text).map_err(|e| WebError::bad(name, format!("{:?}: {e}", short(text))))
}

/// A household id from a path: printable, at most 64 characters.
pub fn household_id(text: &str) -> Result<String> {
    let ok =
        !text.is_empty() && text.chars().count() <= 64 && text.chars().all(|c| !c.is_control());
    if ok {
        Ok(text.to_string())
    } else {
        Err(WebError::bad(
            "household_id",
            format!("{:?} is not a household id", short(text)),
        ))
    }
}

/// `text` cut to 40 characters for messages.
pub fn short(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        s.push('…');
    }
    s
}

/// `text` as a SQL string literal.
pub use tuopin::sql::quote_literal as sql_literal;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_and_named() {
        let p = Params::parse(Some("year=2016&rules=a&rules=b&page=x&level=city")).unwrap();
        assert_eq!(p.year(&[2015, 2016], 2015).unwrap(), 2016);
        assert_eq!(p.all("rules"), ["a", "b"]);
        assert_eq!(p.level("level").unwrap(), Some(Level::City));
        let e = p.page("page", 1).unwrap_err();
        assert!(e.to_string().contains("`page`"), "{e}");
        let p = Params::parse(Some("year=abc")).unwrap();
        assert!(p
            .year(&[2016], 2016)
            .unwrap_err()
            .to_string()
            .contains("`year`"));
        let p = Params::parse(Some("year=2030")).unwrap();
        let e = p.year(&[2016], 2016).unwrap_err().to_string();
        assert!(e.contains("2030") && e.contains("2016"), "{e}");
        let many = (0..100)
            .map(|i| format!("a{i}=1"))
            .collect::<Vec<_>>()
            .join("&");
        assert!(Params::parse(Some(&many)).is_err());
        assert!(Params::parse(Some(&"x".repeat(5000))).is_err());
        assert!(region_code("code", "../etc")
            .unwrap_err()
            .to_string()
            .contains("`code`"));
        assert!(region_code("parent", "130100000000").is_ok());
        assert!(household_id("H1").is_ok());
        assert!(household_id("a\u{0}b").is_err());
        assert_eq!(sql_literal("a'b"), "'a''b'");
    }
}
