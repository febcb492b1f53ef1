//! What every list with a cursor shares: how many it returns at most.

use crate::problem::Problem;

/// Most items in one page, and how many without `?limit=`.
const MAX_LIMIT: usize = 250;
const DEFAULT_LIMIT: usize = 50;

/// `?limit=` checked: 1 to 250, 50 when absent; a 400 otherwise.
pub fn page_limit(limit: Option<usize>) -> Result<usize, Problem> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::bad_request(format!(
            "limit is 1 to {MAX_LIMIT}, not {limit}"
        )))
    }
}
