//! An event type as the API sees it: what a client sends (spec, patch), what
//! the store keeps (record), what the API shows (view), and the JSON Schema
//! its events' payloads must match.
//!
//! A type's schema is compiled without access to the network or the files:
//! a `$ref` to anything outside the schema is refused when the type is
//! written, never fetched (no request goes where a schema's author says).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::problem::{Problem, Violation};

/// Longest description, in bytes.
const MAX_DESCRIPTION: usize = 4_096;
/// Violations listed in one refusal; more are counted, not listed.
const MAX_VIOLATIONS: usize = 10;
/// Longest message of one violation, in characters.
const MAX_MESSAGE: usize = 300;

/// An event type (the body of `POST /api/v1/event-types`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventTypeSpec {
    /// The event name it describes: 1 to 256 letters, digits, `.`, `-`,
    /// `_` or `:` (e.g. `order.created`).
    #[schema(
        pattern = r"^[A-Za-z0-9._:-]{1,256}$",
        min_length = 1,
        max_length = 256
    )]
    pub name: String,
    /// What the event means, for the people who subscribe to it (up to
    /// 4,096 bytes).
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub description: String,
    /// A JSON Schema (draft 4, 6, 7, 2019-09 or 2020-12; 2020-12 without
    /// `$schema`) that every payload of this event must match; an event that
    /// does not is refused with 422. No schema: any payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    /// Shown as deprecated; events are still accepted.
    #[serde(default)]
    pub deprecated: bool,
}

/// A change to an event type (`PATCH`): only the fields given change;
/// `"schema": null` removes the schema, `"archived": false` restores an
/// archived type.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypePatch {
    #[schema(max_length = 4096)]
    pub description: Option<String>,
    /// A new schema, or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Option<Value>>,
    pub deprecated: Option<bool>,
    pub archived: Option<bool>,
}

/// `Some(value)` for a field that is present, even as `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Value>>, D::Error> {
    Option::<Value>::deserialize(d).map(Some)
}

/// What the store keeps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventTypeRecord {
    #[serde(flatten)]
    pub spec: EventTypeSpec,
    /// Archived: hidden from the list (unless asked for) and no longer
    /// checked; restorable.
    #[serde(default)]
    pub archived: bool,
    pub created_at: u64,
    pub updated_at: u64,
}

/// An event type as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    pub name: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    pub deprecated: bool,
    pub archived: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<&EventTypeRecord> for EventTypeView {
    fn from(record: &EventTypeRecord) -> Self {
        EventTypeView {
            name: record.spec.name.clone(),
            description: record.spec.description.clone(),
            schema: record.spec.schema.clone(),
            deprecated: record.spec.deprecated,
            archived: record.archived,
            created_at: crate::clock::unix_rfc3339(record.created_at),
            updated_at: crate::clock::unix_rfc3339(record.updated_at),
        }
    }
}

/// Refuses a name outside the type names' alphabet.
pub fn check_name(name: &str) -> Result<(), Problem> {
    let valid = (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if valid {
        Ok(())
    } else {
        Err(Problem::bad_request(format!(
            "invalid event type name `{}`: use 1 to 256 letters, digits, `.`, `-`, `_` or `:`",
            name.escape_debug()
        )))
    }
}

/// Checks what a client may send: the name, the description's length and
/// the schema (it must compile, offline).
pub fn check_spec(spec: &EventTypeSpec) -> Result<(), Problem> {
    check_name(&spec.name)?;
    check_description(&spec.description)?;
    if let Some(schema) = &spec.schema {
        compile(schema)?;
    }
    Ok(())
}

/// Refuses a description over 4,096 bytes.
pub fn check_description(description: &str) -> Result<(), Problem> {
    if description.len() > MAX_DESCRIPTION {
        return Err(Problem::bad_request(format!(
            "the description has {} bytes; at most {MAX_DESCRIPTION}",
            description.len()
        )));
    }
    Ok(())
}

impl EventTypePatch {
    /// The record with this change made, checked.
    pub fn apply(self, mut record: EventTypeRecord, now: u64) -> Result<EventTypeRecord, Problem> {
        if let Some(description) = self.description {
            check_description(&description)?;
            record.spec.description = description;
        }
        if let Some(schema) = self.schema {
            if let Some(schema) = &schema {
                compile(schema)?;
            }
            record.spec.schema = schema;
        }
        if let Some(deprecated) = self.deprecated {
            record.spec.deprecated = deprecated;
        }
        if let Some(archived) = self.archived {
            record.archived = archived;
        }
        record.updated_at = now;
        Ok(record)
    }
}

/// A compiled schema. Without the crate's `resolve-*` features nothing is
/// fetched: a `$ref` outside the schema fails here.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, Problem> {
    // `true` and `false` are schemas too, but a type that accepts every
    // payload, or none, is said better without one (or not at all).
    if !schema.is_object() {
        return Err(Problem::bad_request(
            "the schema must be a JSON object (send no schema to accept any payload)",
        ));
    }
    jsonschema::validator_for(schema)
        .map_err(|e| Problem::bad_request(format!("the schema is not usable: {}", e.masked())))
}

/// Refuses `payload` unless it matches `validator`: 422, naming each failing
/// JSON pointer (the first ten).
pub fn check_payload(
    name: &str,
    validator: &jsonschema::Validator,
    payload: &Value,
) -> Result<(), Problem> {
    let mut errors = validator.iter_errors(payload);
    let Some(first) = errors.next() else {
        return Ok(());
    };
    let mut violations = Vec::new();
    let mut more = 0usize;
    for error in std::iter::once(first).chain(errors) {
        if violations.len() == MAX_VIOLATIONS {
            more += 1;
            continue;
        }
        let message: String = error
            .masked()
            .to_string()
            .chars()
            .take(MAX_MESSAGE)
            .collect();
        violations.push(Violation {
            pointer: error.instance_path().to_string(),
            message,
        });
    }
    let first = &violations[0];
    let pointer = if first.pointer.is_empty() {
        "the payload itself (``)".to_owned()
    } else {
        format!("`{}`", first.pointer)
    };
    let also = match violations.len() - 1 + more {
        0 => String::new(),
        n => format!(" (and {n} more)"),
    };
    let detail = format!(
        "the payload does not match the schema of event type `{name}`: at {pointer}, {}{also}",
        first.message
    );
    Err(Problem::unprocessable(detail, violations))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Any JSON value, nested a few levels.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,20}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn names_are_accepted_exactly_when_they_are_short_and_in_the_alphabet(name in "\\PC{0,260}") {
            let safe = (1..=256).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c));
            prop_assert_eq!(check_name(&name).is_ok(), safe);
        }

        /// Whatever the payload: an answer, never a panic; a refusal is 422
        /// with at most ten violations, each a JSON pointer into the payload.
        #[test]
        fn any_payload_is_checked_without_panic(payload in any_json()) {
            let validator = compile(&json!({
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string", "maxLength": 8}},
                "additionalProperties": {"type": "array", "items": {"type": "integer"}}
            })).map_err(|p| TestCaseError::fail(p.detail))?;
            match check_payload("t", &validator, &payload) {
                Ok(()) => prop_assert!(validator.is_valid(&payload)),
                Err(problem) => {
                    prop_assert_eq!(problem.status, 422);
                    let violations = problem.errors.unwrap_or_default();
                    prop_assert!((1..=MAX_VIOLATIONS).contains(&violations.len()));
                    for violation in violations {
                        prop_assert!(violation.pointer.is_empty() || payload.pointer(&violation.pointer).is_some(), "{}", violation.pointer);
                    }
                }
            }
        }
    }

    #[test]
    fn names_outside_the_alphabet_are_refused() {
        for bad in ["", "a/b", "a b", "é", "a*", &"x".repeat(257)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["order.created", "a", "v1:user-deleted_x", &"x".repeat(256)] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_remote_ref_is_refused_not_fetched() {
        // (`.ci/run` checks that no HTTP client is in the build at all.)
        for target in ["http://127.0.0.1:9/schema.json", "file:///etc/hostname"] {
            let schema = json!({"$ref": target});
            let Err(problem) = compile(&schema) else {
                panic!("{target} accepted");
            };
            assert_eq!(problem.status, 400);
            assert!(problem.detail.contains("not usable"), "{}", problem.detail);
        }
    }

    #[test]
    fn a_mismatch_names_its_pointers_and_hides_the_value() {
        let schema = json!({
            "type": "object",
            "required": ["id"],
            "properties": {"items": {"type": "array", "items": {"type": "integer"}}}
        });
        let Ok(validator) = compile(&schema) else {
            panic!("schema refused");
        };
        let secret = "s3cr3t-value-".repeat(100);
        let payload = json!({"items": [1, secret, 3]});
        let Err(problem) = check_payload("order.created", &validator, &payload) else {
            panic!("accepted");
        };
        assert_eq!(problem.status, 422);
        let pointers: Vec<&str> = problem
            .errors
            .iter()
            .flatten()
            .map(|v| v.pointer.as_str())
            .collect();
        assert!(pointers.contains(&"/items/1"), "{pointers:?}");
        assert!(pointers.contains(&""), "the missing `id`: {pointers:?}");
        assert!(!problem.detail.contains("s3cr3t"), "{}", problem.detail);
        assert!(check_payload("x", &validator, &json!({"id": 1, "items": [1]})).is_ok());
    }

    #[test]
    fn many_violations_are_counted_not_all_listed() {
        let Ok(validator) = compile(&json!({"type": "array", "items": {"type": "string"}})) else {
            panic!("schema refused");
        };
        let payload = Value::Array((0..50).map(|n| json!(n)).collect());
        let Err(problem) = check_payload("t", &validator, &payload) else {
            panic!("accepted");
        };
        assert_eq!(problem.errors.as_ref().map(Vec::len), Some(MAX_VIOLATIONS));
        assert!(problem.detail.contains("and 49 more"), "{}", problem.detail);
    }
}
