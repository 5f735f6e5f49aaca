/// Inputs to an evaluation that do not fit together. Each variant says which input and
/// which row so the caller can point at the offending file line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("{labels} label rows but {scores} score rows")]
    RowCount { labels: usize, scores: usize },
    #[error("{groups} group keys for {rows} rows")]
    GroupCount { groups: usize, rows: usize },
    #[error("{thresholds} thresholds for a taxonomy of {categories} categories")]
    ThresholdCount {
        thresholds: usize,
        categories: usize,
    },
    #[error("row {row} has {got} labels; the taxonomy has {categories} categories")]
    LabelWidth {
        row: usize,
        got: usize,
        categories: usize,
    },
    #[error("row {row} has {got} scores; the taxonomy has {categories} categories")]
    ScoreWidth {
        row: usize,
        got: usize,
        categories: usize,
    },
}
