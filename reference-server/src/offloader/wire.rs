//! The seam between the HTTP layer and the offloader wire formats: request decoding, job
//! validation, input_data → env and the Go-compatible JSON text of responses.
//!
//! TEMPORARY: these are stand-ins built on serde_json until `proto::offloader` (Go-compatible
//! decoding, validation with exact error strings, `%v` env formatting) is merged; then every function
//! here delegates to it. The HTTP layer only calls this module.

use serde_json::{Map, Value};

use super::record::JobRecord;

/// Go's encoder escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; serde_json doesn't.
/// The replacement is safe on serialized JSON because those characters only occur inside strings.
pub fn go_json(value: &impl serde::Serialize) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// Go's json.Decoder error text for a body that didn't decode.
fn decode_error(body: &[u8], e: &serde_json::Error) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        "EOF".into()
    } else {
        e.to_string()
    }
}

/// `{"clientID": "...", "authKey": "..."}` as Go's `map[string]string`.
pub fn decode_string_map(body: &[u8]) -> Result<Map<String, Value>, String> {
    let mut de =
        serde_json::Deserializer::from_slice(body).into_iter::<Option<Map<String, Value>>>();
    match de.next() {
        None => Err("EOF".into()),
        Some(Err(e)) => Err(decode_error(body, &e)),
        Some(Ok(map)) => {
            let map = map.unwrap_or_default();
            if map.values().any(|v| !v.is_string()) {
                return Err("json: cannot unmarshal number into Go value of type string".into());
            }
            Ok(map)
        }
    }
}

/// A string field of a decoded map ("" when absent, like a Go map lookup).
pub fn field<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The body of POST /jobs.
pub fn decode_job_config(body: &[u8]) -> Result<JobRecord, String> {
    let mut de = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let value = match de.next() {
        None => return Err("EOF".into()),
        Some(Err(e)) => return Err(decode_error(body, &e)),
        Some(Ok(v)) => v,
    };
    let obj = value.as_object().cloned().unwrap_or_default();
    let mut rec = JobRecord::default();
    for (k, v) in obj {
        match k.to_ascii_lowercase().as_str() {
            "type" => {
                rec.job_type = v
                    .as_str()
                    .ok_or("json: cannot unmarshal into type")?
                    .to_owned()
            }
            "runner" => {
                rec.runner = v
                    .as_str()
                    .ok_or("json: cannot unmarshal into runner")?
                    .to_owned()
            }
            "max_duration_sec" => {
                rec.max_duration_sec = v.as_i64().ok_or(
                    "json: cannot unmarshal number into Go struct field Config.max_duration_sec of type int64",
                )?;
            }
            "input_data" => rec.input_data = v.as_object().cloned().unwrap_or_default(),
            _ => {}
        }
    }
    Ok(rec)
}

/// The body of POST /jobs/init: the runners.
pub fn decode_service_config(body: &[u8]) -> Result<Vec<String>, String> {
    let mut de = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let value = match de.next() {
        None => return Err("EOF".into()),
        Some(Err(e)) => return Err(decode_error(body, &e)),
        Some(Ok(v)) => v,
    };
    let obj = value.as_object().cloned().unwrap_or_default();
    let runners = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("runners"))
        .map(|(_, v)| v.clone());
    Ok(runners
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}

fn runner_error(runner: &str, registry: &str) -> Option<String> {
    if runner.is_empty() {
        return Some("runner should not be empty".into());
    }
    if registry.is_empty() {
        return Some("registry should not be empty".into());
    }
    let rest = runner
        .strip_prefix(registry)
        .and_then(|r| r.strip_prefix('/'));
    let parsed = rest
        .and_then(|r| r.split_once(":v"))
        .and_then(|(name, ver)| {
            let min = match name {
                "calls-recorder" => (0, 6, 0),
                "calls-transcriber" => (0, 1, 0),
                _ => return None,
            };
            let core = ver.split_once("-dev").map_or(Some(ver), |(c, d)| {
                d.bytes().all(|b| b.is_ascii_digit()).then_some(c)
            })?;
            let parts: Vec<u64> = core
                .split('.')
                .map(|p| {
                    (!p.is_empty() && (p == "0" || !p.starts_with('0')))
                        .then(|| p.parse().ok())
                        .flatten()
                })
                .collect::<Option<_>>()?;
            (parts.len() == 3).then(|| ((parts[0], parts[1], parts[2]), min))
        });
    match parsed {
        None => Some(format!("failed to validate runner {runner:?}")),
        Some((v, min)) if v < min => Some(format!(
            "actual version ({}.{}.{}) is lower than minimum supported version ({}.{}.{})",
            v.0, v.1, v.2, min.0, min.1, min.2
        )),
        Some(_) => None,
    }
}

/// Whether runner validation is skipped (DEV_MODE or TEST_MODE set to "true").
pub fn runner_check_skipped() -> bool {
    ["DEV_MODE", "TEST_MODE"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| v == "true"))
}

/// Config.IsValid in Go order.
pub fn validate_job_config(rec: &JobRecord, registry: &str) -> Result<(), String> {
    if rec.job_type.is_empty() {
        return Err("invalid Type value: should not be empty".into());
    }
    if !runner_check_skipped()
        && let Some(e) = runner_error(&rec.runner, registry)
    {
        return Err(format!("invalid Runner value: {e}"));
    }
    if rec.max_duration_sec <= 0 {
        return Err("invalid MaxDurationSec value: should be positive".into());
    }
    if rec.job_type != "recording" && rec.job_type != "transcribing" {
        return Err(format!("invalid Type value: {:?}", rec.job_type));
    }
    Ok(())
}

/// ServiceConfig.IsValid.
pub fn validate_service_config(runners: &[String], registry: &str) -> Result<(), String> {
    if runners.is_empty() {
        return Err("invalid empty Runners".into());
    }
    if runner_check_skipped() {
        return Ok(());
    }
    for r in runners {
        if let Some(e) = runner_error(r, registry) {
            return Err(e);
        }
    }
    Ok(())
}

/// input_data → `KEY=value` (stand-in formatting).
pub fn job_env(input: &Map<String, Value>) -> Vec<String> {
    input
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}={text}", k.to_uppercase())
        })
        .collect()
}

/// The job JSON as Go's json.Encoder writes it (with the trailing newline).
pub fn encode_job(rec: &JobRecord) -> String {
    go_json(rec)
}
