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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Any `?limit=`: 50 without one, kept from 1 to 250, refused
        /// otherwise.
        #[test]
        fn limits_are_kept_within_their_bounds(limit in proptest::option::of(0usize..1_000)) {
            match (limit, page_limit(limit)) {
                (None, Ok(50)) => {}
                (Some(n), Ok(kept)) => prop_assert!((1..=250).contains(&n) && kept == n),
                (Some(n), Err(_)) => prop_assert!(n == 0 || n > 250),
                (given, got) => prop_assert!(false, "{:?} → {:?}", given, got.map_err(|p| p.detail)),
            }
        }
    }
}
