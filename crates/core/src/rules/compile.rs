//! Compiling a rule set: each indicator's `when` parsed with DataFusion's
//! SQL parser against the unit's facts schema into an [`Expr`]; anything
//! but columns of that view and scalar functions is refused, with errors
//! naming the rule set, the indicator and the nearest existing column.

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::DFSchema;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, ExprSchemable, Volatility};
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::ast::{visit_expressions, Expr as SqlExpr};

use super::model::{Indicator, RuleSet};
use crate::error::{Error, Result};

impl RuleSet {
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
            // Outcomes must be the same run after run (DESIGN §11).
            Expr::ScalarFunction(f) if f.func.signature().volatility != Volatility::Immutable => {
                Some(format!(
                    "function `{}` is not deterministic (its result changes between runs); \
                     only deterministic functions are allowed",
                    f.func.name()
                ))
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_column_suggestion() {
        let cols = ["safe_water", "safe_housing", "size"];
        assert_eq!(nearest("safe_watr", &cols), Some("safe_water"));
        assert_eq!(nearest("zzzzzzzzzzzz", &cols), None);
    }
}
