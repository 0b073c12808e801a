//! Exit rule sets: declared in TOML, checked, and compiled to one DataFusion
//! plan per evaluation.
//!
//! ```
//! use tuopin::RuleSet;
//! let rules = RuleSet::from_toml(r#"
//!     name = "strict"
//!     unit = "household"
//!     [[indicator]]
//!     key = "income"
//!     points = 100
//!     veto = true
//!     when = "per_capita_net_income > poverty_line"
//! "#).unwrap();
//! assert_eq!(rules.indicators.len(), 1);
//! assert!(RuleSet::builtin("hebei-2016").unwrap().pass_score == Some(80.0));
//! ```
//!
//! Where things happen:
//! - [`RuleSet::from_toml`] parses and runs the checks that need no data
//!   (unique keys, points ≥ 0, pass_score ≤ total);
//! - [`RuleSet::compile`] parses each `when` with DataFusion's SQL parser
//!   against the unit's facts schema and refuses anything but columns and
//!   scalar functions, with errors naming the rule set, indicator and the
//!   nearest existing column;
//! - `outcome_columns` turns compiled indicators into the output columns
//!   (`pass_<key>`, `score`, `failed`, `vetoed_by`, `unknown`, `outcome`)
//!   with the three-valued outcome rule of DESIGN §3.

use std::collections::HashSet;
use std::fmt;
use std::ops::{ControlFlow, Not};
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, ListArray, StringArray};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{
    col, lit, ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::ast::{visit_expressions, Expr as SqlExpr};
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
    ("national-2016", include_str!("../rules/national-2016.toml")),
    ("hebei-2016", include_str!("../rules/hebei-2016.toml")),
    ("village-2016", include_str!("../rules/village-2016.toml")),
    ("county-2016", include_str!("../rules/county-2016.toml")),
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
            if ind.when.trim().is_empty() {
                return err(Some(k), "`when` is empty".into());
            }
        }
        if let Some(pass) = self.pass_score {
            let total = self.total_points();
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

    /// Compile every `when` against `schema` (the unit's facts view):
    /// parsed with DataFusion's SQL parser, only columns of the view and
    /// scalar functions allowed, type boolean.
    pub fn compile(&self, state: &SessionState, schema: &DFSchema) -> Result<Vec<Expr>> {
        self.check()?;
        self.indicators
            .iter()
            .map(|ind| compile_when(&self.name, ind, state, schema))
            .collect()
    }
}

fn compile_when(
    rule_set: &str,
    ind: &Indicator,
    state: &SessionState,
    schema: &DFSchema,
) -> Result<Expr> {
    let fail = |msg: String| Error::rule(rule_set, Some(&ind.key), msg);
    let parsed = DFParser::parse_sql_into_expr(&ind.when)
        .map_err(|e| fail(format!("cannot parse `when` ({}): {e}", ind.when)))?;
    if parsed.alias.is_some() {
        return Err(fail("`when` must be an expression without an alias".into()));
    }
    // Refuse what is not a scalar expression over the view's columns.
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut problem = None;
    let _ = visit_expressions(&parsed.expr, |e: &SqlExpr| {
        let found = match e {
            SqlExpr::Subquery(_) | SqlExpr::Exists { .. } | SqlExpr::InSubquery { .. } => {
                Some("subqueries are not allowed".to_string())
            }
            SqlExpr::Function(f) if f.over.is_some() => {
                Some(format!("window function `{}` is not allowed", f.name))
            }
            SqlExpr::Function(f) if f.filter.is_some() || !f.within_group.is_empty() => {
                Some(format!("aggregate function `{}` is not allowed", f.name))
            }
            SqlExpr::CompoundIdentifier(parts) => Some(format!(
                "qualified name `{}` is not allowed; use a column of the facts view",
                parts
                    .iter()
                    .map(|p| p.value.as_str())
                    .collect::<Vec<_>>()
                    .join(".")
            )),
            SqlExpr::Identifier(ident) => {
                let name = if ident.quote_style.is_some() {
                    ident.value.clone()
                } else {
                    ident.value.to_lowercase()
                };
                (!columns.contains(&name.as_str())).then(|| {
                    format!(
                        "unknown column `{name}`{}",
                        nearest(&name, &columns)
                            .map(|n| format!(" (did you mean `{n}`?)"))
                            .unwrap_or_default()
                    )
                })
            }
            _ => None,
        };
        match found {
            Some(p) => {
                problem = Some(p);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    });
    if let Some(p) = problem {
        return Err(fail(p));
    }
    let expr = state
        .create_logical_expr_from_sql_expr(parsed, schema)
        .map_err(|e| fail(format!("invalid `when` ({}): {e}", ind.when)))?;
    let mut refused = None;
    expr.apply(|e| {
        refused = match e {
            Expr::AggregateFunction(f) => Some(format!(
                "aggregate function `{}` is not allowed",
                f.func.name()
            )),
            Expr::WindowFunction(_) => Some("window functions are not allowed".into()),
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => {
                Some("subqueries are not allowed".into())
            }
            Expr::Placeholder(_) => Some("placeholders are not allowed".into()),
            _ => None,
        };
        Ok(if refused.is_some() {
            datafusion::common::tree_node::TreeNodeRecursion::Stop
        } else {
            datafusion::common::tree_node::TreeNodeRecursion::Continue
        })
    })?;
    if let Some(r) = refused {
        return Err(fail(r));
    }
    let data_type = expr
        .get_type(schema)
        .map_err(|e| fail(format!("invalid `when` ({}): {e}", ind.when)))?;
    if data_type != DataType::Boolean {
        return Err(fail(format!(
            "`when` must be boolean, but `{}` is {data_type}",
            ind.when
        )));
    }
    Ok(expr)
}

/// The column name closest to `name` (edit distance), if any is close.
pub(crate) fn nearest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (levenshtein(name, c), *c))
        .filter(|(d, c)| {
            *d <= (name.len().max(c.len()) / 2).max(2) || c.contains(name) || name.contains(c)
        })
        .min()
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Output column expressions of one rule set given its compiled
/// indicators (already projected as `<prefix>pass_<key>` columns).
///
/// Returns `(pass columns, score, failed, vetoed_by, unknown, outcome)`
/// expressions — all plain DataFusion expressions plus the `flag_list` UDF.
pub(crate) struct OutcomeExprs {
    pub score: Expr,
    pub failed: Expr,
    pub vetoed_by: Expr,
    pub unknown: Expr,
    pub outcome: Expr,
}

/// Build the outcome expressions of DESIGN §3 over `pass_columns`, the
/// pass column of each indicator in the rule set's order.
///
/// - `stay`: a veto indicator failed, or score + unknown points < pass mark;
/// - `exit`: no veto failed or unknown, and score ≥ pass mark;
/// - `undetermined`: otherwise.
///
/// Without a pass_score every indicator acts as a veto and the pass mark is
/// the total, so `exit` needs all to pass.
pub(crate) fn outcome_columns(rules: &RuleSet, pass_columns: &[String]) -> Result<OutcomeExprs> {
    let all_veto = rules.pass_score.is_none();
    let pass_mark = rules.pass_score.unwrap_or_else(|| rules.total_points());
    debug_assert_eq!(pass_columns.len(), rules.indicators.len());
    let inds: Vec<(&Indicator, Expr)> = rules
        .indicators
        .iter()
        .zip(pass_columns)
        .map(|(i, c)| (i, col(datafusion::common::Column::from_name(c))))
        .collect();
    let vetoes: Vec<&(&Indicator, Expr)> =
        inds.iter().filter(|(i, _)| i.veto || all_veto).collect();
    let any = |terms: Vec<Expr>| {
        terms
            .into_iter()
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false))
    };

    let points = |flag: fn(Expr) -> Expr| {
        let mut args = Vec::new();
        for (i, pass) in &inds {
            args.push(lit(i.points));
            args.push(flag(pass.clone()));
        }
        flag_points_udf().call(args)
    };
    // A null pass counts as not passed (flag_points reads null as false).
    let score = points(|pass| pass);
    let unknown_points = points(Expr::is_null);
    let veto_failed = any(vetoes.iter().map(|(_, p)| p.clone().is_false()).collect());
    let veto_unknown = any(vetoes.iter().map(|(_, p)| p.clone().is_null()).collect());
    let outcome = first_label_udf().call(vec![
        lit("stay"),
        veto_failed.or((score.clone() + unknown_points).lt(lit(pass_mark))),
        lit("exit"),
        veto_unknown.not().and(score.clone().gt_eq(lit(pass_mark))),
        lit("undetermined"),
    ]);
    // `flag_list(key, flag(pass), …)` over the chosen indicators.
    let list = |chosen: &[&(&Indicator, Expr)], flag: fn(Expr) -> Expr| -> Expr {
        let mut args = Vec::new();
        for (i, pass) in chosen {
            args.push(lit(i.key.clone()));
            args.push(flag(pass.clone()));
        }
        flag_list_udf().call(args)
    };
    let all: Vec<&(&Indicator, Expr)> = inds.iter().collect();
    Ok(OutcomeExprs {
        score,
        failed: list(&all, Expr::is_false),
        vetoed_by: list(&vetoes, Expr::is_false),
        unknown: list(&all, Expr::is_null),
        outcome,
    })
}

/// `flag_list('a', flag_a, 'b', flag_b, …) -> list<utf8>`: the names whose
/// flag is true, in order. Used for the `failed`, `vetoed_by` and `unknown`
/// columns; registered on every engine session so plans stay serialisable
/// by name.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FlagList {
    signature: Signature,
}

/// The `flag_list` scalar UDF.
pub fn flag_list_udf() -> ScalarUDF {
    ScalarUDF::from(FlagList {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for FlagList {
    fn name(&self) -> &str {
        "flag_list"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Utf8,
            true,
        ))))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let (names, flags): (Vec<String>, Vec<BooleanBuffer>) =
            flag_pairs("flag_list", &args.args, n, text_literal)?
                .into_iter()
                .unzip();
        if flags.len() > 64 {
            return datafusion::common::plan_err!("flag_list takes at most 64 flags");
        }
        // Each row's set flags as one bitmask, built flag by flag from the
        // flags' bitmaps (a null flag counts as false).
        let mut masks = vec![0u64; n];
        for (k, set) in flags.iter().enumerate() {
            for row in set.set_indices() {
                masks[row] |= 1 << k;
            }
        }
        // The lists' strings and offsets, written straight from the masks.
        let mut values = Utf8Writer::new("flag_list", n);
        let mut lists = Vec::with_capacity(n + 1);
        lists.push(0i32);
        for mask in masks {
            let mut m = mask;
            while m != 0 {
                values.push(&names[m.trailing_zeros() as usize])?;
                m &= m - 1;
            }
            lists.push(values.offset(values.len())?);
        }
        let values = values.finish()?;
        let list = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Utf8, true)),
            OffsetBuffer::new(ScalarBuffer::from(lists)),
            Arc::new(values),
            None,
        )?;
        Ok(ColumnarValue::Array(Arc::new(list)))
    }
}

/// A text literal argument (`'name'`) of a rule UDF.
fn text_literal(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(text)) => Some(text.clone()),
        _ => None,
    }
}

/// A Utf8 column written straight into its bytes and offsets (what the
/// rule UDFs return), failing with an execution error rather than
/// overflowing past Arrow's 2 GiB of text per array.
struct Utf8Writer {
    function: &'static str,
    bytes: Vec<u8>,
    ends: Vec<i32>,
}

impl Utf8Writer {
    /// An empty column for `function`'s output, room for `rows` strings.
    fn new(function: &'static str, rows: usize) -> Self {
        let mut ends = Vec::with_capacity(rows + 1);
        ends.push(0);
        Utf8Writer {
            function,
            bytes: Vec::new(),
            ends,
        }
    }

    /// Strings written so far.
    fn len(&self) -> usize {
        self.ends.len() - 1
    }

    /// `at` as an Arrow i32 offset.
    fn offset(&self, at: usize) -> DfResult<i32> {
        i32::try_from(at).map_err(|_| {
            DataFusionError::Execution(format!("{}: output over 2 GiB", self.function))
        })
    }

    /// Append one string.
    fn push(&mut self, text: &str) -> DfResult<()> {
        self.bytes.extend_from_slice(text.as_bytes());
        let end = self.offset(self.bytes.len())?;
        self.ends.push(end);
        Ok(())
    }

    /// The finished column.
    fn finish(self) -> DfResult<StringArray> {
        Ok(StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(self.ends)),
            Buffer::from_vec(self.bytes),
            None,
        )?)
    }
}

/// The (literal, flag) pairs of a `flag_list`, `flag_points` or
/// `first_label` call, each flag as the bitmap of its true rows (a null
/// flag counts as false).
fn flag_pairs<T>(
    name: &str,
    args: &[ColumnarValue],
    rows: usize,
    literal: impl Fn(&ScalarValue) -> Option<T>,
) -> DfResult<Vec<(T, BooleanBuffer)>> {
    args.chunks(2)
        .map(|pair| {
            let [ColumnarValue::Scalar(label), flag] = pair else {
                return datafusion::common::plan_err!(
                    "{name} takes (literal, flag) pairs, got a non-literal or a lone argument"
                );
            };
            let Some(label) = literal(label) else {
                return datafusion::common::plan_err!("{name}: unexpected literal {label}");
            };
            let flag: ArrayRef = flag.to_array(rows)?;
            let flag = datafusion::common::cast::as_boolean_array(&flag)?;
            let set = match flag.nulls() {
                Some(nulls) => flag.values() & nulls.inner(),
                None => flag.values().clone(),
            };
            Ok((label, set))
        })
        .collect()
}

/// `flag_points(p_a, flag_a, p_b, flag_b, …) -> float64`: the sum of the
/// points whose flag is true (0 when none), added in argument order — the
/// rule engine's `score` and unknown points. Same value as a sum of
/// `CASE WHEN flag THEN p ELSE 0 END`, computed from the flags' bitmaps.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FlagPoints {
    signature: Signature,
}

/// The `flag_points` scalar UDF.
pub fn flag_points_udf() -> ScalarUDF {
    ScalarUDF::from(FlagPoints {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for FlagPoints {
    fn name(&self) -> &str {
        "flag_points"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let pairs = flag_pairs("flag_points", &args.args, n, |v| match v {
            ScalarValue::Float64(Some(p)) => Some(*p),
            _ => None,
        })?;
        let mut sums = vec![0.0f64; n];
        for (points, set) in &pairs {
            for row in set.set_indices() {
                sums[row] += points;
            }
        }
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(sums))))
    }
}

/// `first_label('a', cond_a, 'b', cond_b, …, 'otherwise') -> utf8`: the
/// label of the first true condition (a null condition counts as false),
/// else the last label — `CASE WHEN cond_a THEN 'a' WHEN … ELSE 'otherwise'
/// END`, computed from the conditions' bitmaps. The rule engine's `outcome`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FirstLabel {
    signature: Signature,
}

/// The `first_label` scalar UDF.
pub fn first_label_udf() -> ScalarUDF {
    ScalarUDF::from(FirstLabel {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for FirstLabel {
    fn name(&self) -> &str {
        "first_label"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let Some((ColumnarValue::Scalar(ScalarValue::Utf8(Some(otherwise))), pairs)) =
            args.args.split_last()
        else {
            return datafusion::common::plan_err!("first_label ends with a text literal");
        };
        let conds = flag_pairs("first_label", pairs, n, text_literal)?;
        let mut labels: Vec<&str> = conds.iter().map(|(l, _)| l.as_str()).collect();
        labels.push(otherwise);
        // Each row's label index: later conditions first, so the first
        // true one is written last and wins.
        let mut chosen = vec![conds.len(); n];
        for (k, (_, set)) in conds.iter().enumerate().rev() {
            for row in set.set_indices() {
                chosen[row] = k;
            }
        }
        let mut out = Utf8Writer::new("first_label", n);
        for k in chosen {
            out.push(labels[k])?;
        }
        let out = out.finish()?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::BooleanArray;

    /// The two flags the rule UDF tests share: rows (a, b) = (T, T),
    /// (null, T), (F, null), (T, F).
    fn two_flags() -> (ColumnarValue, ColumnarValue) {
        let a = BooleanArray::from(vec![Some(true), None, Some(false), Some(true)]);
        let b = BooleanArray::from(vec![Some(true), Some(true), None, Some(false)]);
        (
            ColumnarValue::Array(Arc::new(a)),
            ColumnarValue::Array(Arc::new(b)),
        )
    }

    fn text(s: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.into())))
    }

    /// Call `udf` on `args` over the four rows of [`two_flags`].
    fn invoke(udf: ScalarUDF, args: Vec<ColumnarValue>) -> ArrayRef {
        let args = ScalarFunctionArgs {
            arg_fields: (0..args.len())
                .map(|_| Arc::new(Field::new("x", DataType::Boolean, true)))
                .collect(),
            args,
            number_rows: 4,
            return_field: Arc::new(Field::new("f", udf.return_type(&[]).unwrap(), true)),
            config_options: Arc::new(Default::default()),
        };
        let ColumnarValue::Array(out) = udf.invoke_with_args(args).unwrap() else {
            panic!("an array")
        };
        out
    }

    #[test]
    fn flag_list_names_the_true_flags_in_order() {
        let (a, b) = two_flags();
        let out = invoke(flag_list_udf(), vec![text("a"), a, text("bb"), b]);
        let out = datafusion::common::cast::as_list_array(&out).unwrap();
        let rows: Vec<Vec<String>> = (0..4)
            .map(|i| {
                let v = out.value(i);
                let v = datafusion::common::cast::as_string_array(&v).unwrap();
                v.iter().map(|s| s.unwrap().to_string()).collect()
            })
            .collect();
        assert_eq!(rows, [vec!["a", "bb"], vec!["bb"], vec![], vec!["a"]]);
    }

    #[test]
    fn flag_points_adds_the_points_of_true_flags() {
        let (a, b) = two_flags();
        let points = |p: f64| ColumnarValue::Scalar(ScalarValue::Float64(Some(p)));
        let out = invoke(flag_points_udf(), vec![points(30.0), a, points(2.5), b]);
        let out = datafusion::common::cast::as_float64_array(&out).unwrap();
        assert_eq!(out.null_count(), 0);
        assert_eq!(out.values().to_vec(), [32.5, 2.5, 0.0, 30.0]);
    }

    #[test]
    fn first_label_takes_the_first_true_condition() {
        let (a, b) = two_flags();
        let out = invoke(
            first_label_udf(),
            vec![text("a"), a, text("b"), b, text("none")],
        );
        let out = datafusion::common::cast::as_string_array(&out).unwrap();
        let got: Vec<&str> = out.iter().map(|s| s.unwrap()).collect();
        assert_eq!(got, ["a", "b", "none", "a"]);
    }

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
    fn nearest_column_suggestion() {
        let cols = ["safe_water", "safe_housing", "size"];
        assert_eq!(nearest("safe_watr", &cols), Some("safe_water"));
        assert_eq!(nearest("zzzzzzzzzzzz", &cols), None);
    }

    #[test]
    fn toml_round_trip() {
        let h = RuleSet::builtin("hebei-2016").unwrap();
        let again = RuleSet::from_toml(&h.to_toml().unwrap()).unwrap();
        assert_eq!(h, again);
    }
}
