//! The outcome of a rule set (DESIGN §3) as expressions over its pass
//! columns: score, failed, vetoed_by, unknown and the three-valued outcome,
//! through the flag UDFs of [`crate::functions::flags`].

use std::ops::Not;

use datafusion::logical_expr::{col, lit, Expr};

use super::model::{Indicator, RuleSet};
use crate::error::Result;
use crate::functions::flags::{first_label_udf, flag_list_udf, flag_points_udf};

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
