/// Errors of the quality-control functions: all are caller mistakes (mismatched lengths,
/// indices out of range, invalid settings).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QcError {
    #[error("{what}: expected {expected} entries, got {got}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("audited row {0} is not among the flagged rows")]
    NotFlagged(usize),
    #[error("row {0} is audited twice")]
    DuplicateAudit(usize),
    #[error("invalid setting: {0}")]
    Invalid(String),
}

pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), QcError> {
    if expected == got {
        Ok(())
    } else {
        Err(QcError::Length {
            what,
            expected,
            got,
        })
    }
}
