//! The rule-set model: the serde types of a rule file, the built-in rule
//! sets, and the checks that need no data (unique keys, points ≥ 0 and
//! finite, pass_score ≤ total).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The unit a rule set decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Households (`household_facts`).
    Household,
    /// Villages (`village_facts`).
    Village,
    /// Counties (`county_facts`).
    County,
}

impl Unit {
    /// The facts view the rule expressions are written against.
    pub fn facts_view(self) -> &'static str {
        match self {
            Unit::Household => "household_facts",
            Unit::Village => "village_facts",
            Unit::County => "county_facts",
        }
    }

    /// The key columns of an evaluation result.
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            Unit::Household => &["household_id", "year", "village_code"],
            Unit::Village | Unit::County => &["code", "year", "name"],
        }
    }

    /// Plural, for counts ("households", "villages", "counties").
    pub fn plural(self) -> &'static str {
        match self {
            Unit::Household => "households",
            Unit::Village => "villages",
            Unit::County => "counties",
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Household => "household",
            Unit::Village => "village",
            Unit::County => "county",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Unit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "household" => Ok(Unit::Household),
            "village" => Ok(Unit::Village),
            "county" => Ok(Unit::County),
            _ => Err(Error::InvalidArgument(format!(
                "unknown unit `{s}` (expected household, village or county)"
            ))),
        }
    }
}

/// One scored indicator of a rule set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    /// Short identifier; the output column is `pass_<key>`.
    pub key: String,
    /// Human label (Chinese welcome).
    #[serde(default)]
    pub label: String,
    /// Points earned when the indicator passes.
    #[serde(default)]
    pub points: f64,
    /// A failed veto indicator means `stay` whatever the score.
    #[serde(default)]
    pub veto: bool,
    /// SQL boolean expression over the unit's facts view.
    pub when: String,
    /// Weight of the indicator in the multidimensional poverty index
    /// (`Engine::mpi`); absent: its points. Normalised to sum 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// A declared rule set (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Name, unique among rule sets compared together.
    pub name: String,
    /// What is decided on.
    pub unit: Unit,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Score needed to exit; absent means every indicator must pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_score: Option<f64>,
    /// The indicators, in order.
    #[serde(rename = "indicator", default)]
    pub indicators: Vec<Indicator>,
}

/// The built-in rule sets: name and TOML text.
pub const BUILTINS: [(&str, &str); 4] = [
    (
        "national-2016",
        include_str!("../../rules/national-2016.toml"),
    ),
    ("hebei-2016", include_str!("../../rules/hebei-2016.toml")),
    (
        "village-2016",
        include_str!("../../rules/village-2016.toml"),
    ),
    ("county-2016", include_str!("../../rules/county-2016.toml")),
];

impl RuleSet {
    /// Parse and check a rule set written in TOML.
    pub fn from_toml(text: &str) -> Result<RuleSet> {
        let rules: RuleSet = toml::from_str(text).map_err(|e| {
            let name = toml::from_str::<toml::Table>(text)
                .ok()
                .and_then(|t| t.get("name").and_then(|n| n.as_str().map(str::to_string)))
                .unwrap_or_else(|| "<unnamed>".into());
            Error::rule(
                &name,
                None,
                format!("invalid TOML: {}", e.to_string().trim()),
            )
        })?;
        rules.check()?;
        Ok(rules)
    }

    /// A built-in rule set by name (see [`RuleSet::builtin_names`]).
    pub fn builtin(name: &str) -> Result<RuleSet> {
        let (_, text) =
            BUILTINS
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| Error::UnknownRuleSet {
                    name: name.to_string(),
                    known: Self::builtin_names().join(", "),
                })?;
        RuleSet::from_toml(text)
    }

    /// Names of the built-in rule sets.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTINS.iter().map(|(n, _)| *n).collect()
    }

    /// The TOML text of a built-in rule set, to copy and edit.
    pub fn builtin_toml(name: &str) -> Option<&'static str> {
        BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// The rule set as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::rule(&self.name, None, e.to_string()))
    }

    /// A copy with another name and pass mark: handy for policy
    /// comparisons (`hebei-2016` at 70, 80 and 90 points).
    pub fn with_pass_score(&self, name: &str, pass_score: f64) -> Result<RuleSet> {
        let mut r = self.clone();
        r.name = name.to_string();
        r.pass_score = Some(pass_score);
        r.check()?;
        Ok(r)
    }

    /// The weights of the indicators in the multidimensional poverty index
    /// (DESIGN §9): each indicator's `weight`, else its points, normalised
    /// to sum 1. An error when they add up to 0 or not to a finite number.
    pub fn mpi_weights(&self) -> Result<Vec<f64>> {
        let raw: Vec<f64> = self
            .indicators
            .iter()
            .map(|i| i.weight.unwrap_or(i.points))
            .collect();
        let total: f64 = raw.iter().sum();
        if !(total.is_finite() && total > 0.0) {
            return Err(Error::rule(
                &self.name,
                None,
                format!(
                    "the indicator weights add up to {total}; the index needs a positive total"
                ),
            ));
        }
        Ok(raw.into_iter().map(|w| w / total).collect())
    }

    /// Total points of all indicators.
    pub fn total_points(&self) -> f64 {
        self.indicators.iter().map(|i| i.points).sum()
    }

    /// Checks that need no data: name, keys, points, pass_score.
    pub fn check(&self) -> Result<()> {
        let err = |ind: Option<&str>, msg: String| Err(Error::rule(&self.name, ind, msg));
        if self.name.trim().is_empty() {
            return err(None, "name is empty".into());
        }
        if self.indicators.is_empty() {
            return err(None, "no [[indicator]] declared".into());
        }
        let mut seen = HashSet::new();
        for ind in &self.indicators {
            let k = ind.key.as_str();
            let valid = k
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return err(
                    Some(k),
                    "key must be lower-case letters, digits and _".into(),
                );
            }
            if !seen.insert(k) {
                return err(Some(k), "duplicate indicator key".into());
            }
            if !ind.points.is_finite() || ind.points < 0.0 {
                return err(Some(k), format!("points must be >= 0, got {}", ind.points));
            }
            if let Some(w) = ind.weight {
                if !w.is_finite() || w < 0.0 {
                    return err(Some(k), format!("weight must be >= 0, got {w}"));
                }
            }
            if ind.when.trim().is_empty() {
                return err(Some(k), "`when` is empty".into());
            }
        }
        let total = self.total_points();
        if !total.is_finite() {
            return err(
                None,
                format!("the points add up to {total}; the total must be a finite number"),
            );
        }
        if let Some(pass) = self.pass_score {
            if !pass.is_finite() || pass < 0.0 {
                return err(None, format!("pass_score must be >= 0, got {pass}"));
            }
            if pass > total {
                return err(
                    None,
                    format!("pass_score {pass} is above the total of {total} points"),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_check() {
        for name in RuleSet::builtin_names() {
            let r = RuleSet::builtin(name).unwrap();
            assert_eq!(r.name, name);
        }
        let h = RuleSet::builtin("hebei-2016").unwrap();
        assert_eq!(h.total_points(), 100.0);
        assert_eq!(h.indicators.len(), 7);
        assert_eq!(h.indicators.iter().filter(|i| i.veto).count(), 4);
        assert!(h.indicators[..4].iter().all(|i| i.veto));
    }

    #[test]
    fn toml_round_trip() {
        let h = RuleSet::builtin("hebei-2016").unwrap();
        let again = RuleSet::from_toml(&h.to_toml().unwrap()).unwrap();
        assert_eq!(h, again);
    }
}
