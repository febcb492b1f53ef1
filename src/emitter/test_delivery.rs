//! The result of `WebhooksEmitter::test`, for a "test this webhook" button.

use std::time::Duration;

use crate::model::Failure;
use crate::model::RequestId;

/// Name of the event `test` sends.
pub const TEST_EVENT: &str = "webhook_test";

/// What one test request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDelivery {
    /// The test event's request id.
    pub request_id: RequestId,
    /// The 2xx status, or why it failed (a non-2xx status included).
    pub outcome: Result<u16, Failure>,
    /// From sending to the response head (or the failure).
    pub latency: Duration,
}
