//! A small JSON Schema validator for the subset the committed results schemas use: `type` (one or a
//! list), `properties`, `required`, `additionalProperties` (boolean or schema), `items`, `enum`,
//! `minimum`, `maximum`, `minLength`, and local `$ref`s to `#/$defs/…`. Annotation keywords
//! (`$schema`, `$id`, `title`, `description`, `$comment`, `$defs`) are skipped.
//!
//! Written in-house because the `jsonschema` crate pulls in an HTTP client and regex engines for far
//! more than these schemas need. A keyword outside the subset is an error, never silently ignored, so
//! a schema cannot claim more than is checked.

use serde_json::Value;

const ANNOTATIONS: [&str; 6] = [
    "$schema",
    "$id",
    "title",
    "description",
    "$comment",
    "$defs",
];

/// Validates `instance` against `schema`; returns every violation as `path: message`.
pub fn validate(schema: &Value, instance: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, schema, instance, "$", &mut errors);
    errors
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_u64() || v.is_i64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

fn check(root: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{path}: no value is allowed here"));
        }
        return;
    };
    for (key, s) in obj {
        match key.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => {
                let target = s
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .and_then(|name| root.get("$defs")?.get(name));
                match target {
                    Some(t) => check(root, t, v, path, errors),
                    None => errors.push(format!("{path}: unresolvable $ref {s}")),
                }
            }
            "type" => {
                let names: Vec<&str> = match s {
                    Value::String(n) => vec![n.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                if !names.iter().any(|n| type_matches(n, v)) {
                    errors.push(format!(
                        "{path}: expected {}, found {v}",
                        names.join(" or ")
                    ));
                }
            }
            "properties" => {
                if let (Some(props), Some(o)) = (s.as_object(), v.as_object()) {
                    for (name, sub) in props {
                        if let Some(value) = o.get(name) {
                            check(root, sub, value, &format!("{path}.{name}"), errors);
                        }
                    }
                }
            }
            "required" => {
                if let (Some(req), Some(o)) = (s.as_array(), v.as_object()) {
                    for name in req.iter().filter_map(Value::as_str) {
                        if !o.contains_key(name) {
                            errors.push(format!("{path}: missing required key \"{name}\""));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(o) = v.as_object() {
                    let known = obj.get("properties").and_then(Value::as_object);
                    for (name, value) in o {
                        if known.is_some_and(|k| k.contains_key(name)) {
                            continue;
                        }
                        match s {
                            Value::Bool(false) => {
                                errors.push(format!("{path}: unexpected key \"{name}\""))
                            }
                            Value::Object(_) => {
                                check(root, s, value, &format!("{path}.{name}"), errors)
                            }
                            _ => {}
                        }
                    }
                }
            }
            "items" => {
                if let Some(a) = v.as_array() {
                    for (i, item) in a.iter().enumerate() {
                        check(root, s, item, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            "enum" => {
                if !s.as_array().is_some_and(|a| a.contains(v)) {
                    errors.push(format!("{path}: {v} is not one of {s}"));
                }
            }
            "minimum" => {
                if let (Some(min), Some(x)) = (s.as_f64(), v.as_f64())
                    && x < min
                {
                    errors.push(format!("{path}: {x} is below the minimum {min}"));
                }
            }
            "maximum" => {
                if let (Some(max), Some(x)) = (s.as_f64(), v.as_f64())
                    && x > max
                {
                    errors.push(format!("{path}: {x} is above the maximum {max}"));
                }
            }
            "minLength" => {
                if let (Some(min), Some(x)) = (s.as_u64(), v.as_str())
                    && (x.chars().count() as u64) < min
                {
                    errors.push(format!("{path}: string shorter than {min}"));
                }
            }
            other => errors.push(format!(
                "{path}: schema keyword \"{other}\" is not supported"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_subset_is_enforced() {
        let schema = json!({
            "$defs": {"us": {"type": ["integer", "null"], "minimum": 0}},
            "type": "object",
            "required": ["a", "b"],
            "additionalProperties": false,
            "properties": {
                "a": {"$ref": "#/$defs/us"},
                "b": {"type": "array", "items": {"enum": ["x", "y"]}}
            }
        });
        assert!(validate(&schema, &json!({"a": 3, "b": ["x"]})).is_empty());
        assert!(validate(&schema, &json!({"a": null, "b": []})).is_empty());
        let errs = validate(&schema, &json!({"a": -1, "b": ["z"], "c": 1}));
        assert_eq!(errs.len(), 3, "{errs:?}");
        let errs = validate(&schema, &json!({"a": 1.5}));
        assert!(
            errs.iter()
                .any(|e| e.contains("missing required key \"b\""))
        );
        assert!(errs.iter().any(|e| e.contains("expected integer or null")));
    }

    #[test]
    fn unknown_keywords_are_reported_not_ignored() {
        let errs = validate(&json!({"pattern": "^a"}), &json!("b"));
        assert_eq!(errs, ["$: schema keyword \"pattern\" is not supported"]);
    }
}
