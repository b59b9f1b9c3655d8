//! Decoding request and response bodies the way Go's `encoding/json` fills the offloader's types.
//!
//! Struct keys match case-insensitively (Go folds ASCII case, plus `ſ`→`S` and the Kelvin sign →`K`),
//! unknown keys are skipped, a repeated key overwrites (a repeated map merges into the first, a JSON
//! `null` leaves a string or number untouched), and wrong kinds give Go's `UnmarshalTypeError` text.
//! `/register`, `/login` and `/unregister` decode into `map[string]string` instead, so their keys
//! are case-SENSITIVE and every value must be a string or null.

use std::collections::BTreeMap;

use super::goread::{DecodeError, Kind, Reader, TypeError};
use super::job::{Config, InputData, Job, REQUEST_BODY_LIMIT, ServiceConfig};

/// Where a struct field's value goes.
enum Slot<'s> {
    Str(&'s mut String),
    I64(&'s mut i64),
    Map(&'s mut Option<InputData>),
    Strings(&'s mut Option<Vec<String>>),
}

struct Field<'s> {
    /// The JSON name Go reports in errors.
    name: &'static str,
    go_type: &'static str,
    slot: Slot<'s>,
}

fn field<'s>(name: &'static str, go_type: &'static str, slot: Slot<'s>) -> Field<'s> {
    Field {
        name,
        go_type,
        slot,
    }
}

/// Go's key folding for struct field lookup (`foldName`): ASCII letters upper-cased, `ſ` (U+017F)
/// and `K` (U+212A) mapped to their ASCII fold partners. Every other non-ASCII character folds to a
/// non-ASCII one, so it can never match the offloader's ASCII field names.
fn fold(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '\u{17F}' => 'S',
            '\u{212A}' => 'K',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

fn decode_struct(
    r: &mut Reader<'_>,
    kind: Kind,
    struct_name: &'static str,
    go_type: &'static str,
    fields: &mut [Field<'_>],
) -> Result<(), DecodeError> {
    match kind {
        Kind::Object => {}
        Kind::Null => {
            r.read_literal()?;
            return Ok(());
        }
        other => return r.mismatch(other, go_type, None),
    }
    r.enter()?;
    let mut first = true;
    while let Some(key) = r.next_key(first)? {
        first = false;
        // Go tries the exact name first, then the folded one.
        let idx = fields.iter().position(|f| f.name == key).or_else(|| {
            let folded = fold(&key);
            fields.iter().position(|f| fold(f.name) == folded)
        });
        match idx {
            Some(i) => decode_field(r, struct_name, &mut fields[i])?,
            None => r.skip_value()?,
        }
    }
    Ok(())
}

fn decode_field(
    r: &mut Reader<'_>,
    struct_name: &'static str,
    f: &mut Field<'_>,
) -> Result<(), DecodeError> {
    let ctx = Some((struct_name, f.name));
    let kind = r.begin()?;
    match (&mut f.slot, kind) {
        (_, Kind::Null) => {
            r.read_literal()?;
            match &mut f.slot {
                Slot::Map(m) => **m = None,
                Slot::Strings(v) => **v = None,
                // Go ignores null for strings and numbers.
                Slot::Str(_) | Slot::I64(_) => {}
            }
        }
        (Slot::Str(s), Kind::String) => **s = r.read_string()?,
        (Slot::I64(n), Kind::Number) => {
            let lit = r.read_number()?;
            match lit.parse::<i64>() {
                Ok(v) => **n = v,
                Err(_) => r.save(TypeError {
                    value: format!("number {lit}"),
                    go_type: f.go_type,
                    field: ctx,
                }),
            }
        }
        (Slot::Map(m), Kind::Object) => {
            r.enter()?;
            // A repeated key adds to the map Go already made.
            let map = m.get_or_insert_with(InputData::default);
            let mut first = true;
            while let Some(key) = r.next_key(first)? {
                first = false;
                let v = r.read_any(ctx)?;
                map.0.insert(key, v);
            }
        }
        (Slot::Strings(v), Kind::Array) => {
            r.enter()?;
            let vec = v.get_or_insert_with(Vec::new);
            let mut i = 0;
            while r.next_elem(i == 0)? {
                let kind = r.begin()?;
                // Go decodes each element into the slot at `i`, so a null keeps what was there.
                if i >= vec.len() {
                    vec.push(String::new());
                }
                match kind {
                    Kind::String => vec[i] = r.read_string()?,
                    Kind::Null => {
                        r.read_literal()?;
                    }
                    other => scalar_mismatch(r, other, "string", ctx)?,
                }
                i += 1;
            }
            vec.truncate(i);
        }
        (_, other) => scalar_mismatch(r, other, f.go_type, ctx)?,
    }
    Ok(())
}

/// Consumes a value of the wrong kind and records the mismatch.
fn scalar_mismatch(
    r: &mut Reader<'_>,
    kind: Kind,
    go_type: &'static str,
    ctx: Option<(&'static str, &'static str)>,
) -> Result<(), DecodeError> {
    r.mismatch(kind, go_type, ctx)
}

impl Config {
    /// Decodes a `POST /jobs` body as the Go handler does, 1 MiB limit included. Pass the body as
    /// received (or its first `REQUEST_BODY_LIMIT + 1` bytes).
    pub fn decode(body: &[u8]) -> Result<Config, DecodeError> {
        Config::decode_limited(body, Some(REQUEST_BODY_LIMIT))
    }

    /// [`Config::decode`] with another limit (`None`: unlimited).
    pub fn decode_limited(body: &[u8], limit: Option<usize>) -> Result<Config, DecodeError> {
        Reader::decode(body, limit, |r, kind| {
            let mut c = Config::default();
            let mut fields = config_fields(&mut c);
            decode_struct(r, kind, "Config", "job.Config", &mut fields)?;
            Ok(c)
        })
    }
}

fn config_fields(c: &mut Config) -> [Field<'_>; 4] {
    [
        field("type", "job.Type", Slot::Str(&mut c.job_type)),
        field(
            "max_duration_sec",
            "int64",
            Slot::I64(&mut c.max_duration_sec),
        ),
        field("runner", "string", Slot::Str(&mut c.runner)),
        field("input_data", "job.InputData", Slot::Map(&mut c.input_data)),
    ]
}

impl Job {
    /// Decodes a job as the Go client does (`GetJob`, `CreateJob` responses), without a size limit.
    pub fn decode(body: &[u8]) -> Result<Job, DecodeError> {
        Reader::decode(body, None, |r, kind| {
            let mut j = Job::default();
            let Job {
                config,
                id,
                start_at,
                stop_at,
                output_data,
            } = &mut j;
            let [t, m, run, inp] = config_fields(config);
            let mut fields = [
                t,
                m,
                run,
                inp,
                field("id", "string", Slot::Str(id)),
                field("start_at", "int64", Slot::I64(start_at)),
                field("stop_at", "int64", Slot::I64(stop_at)),
                field(
                    "output_data",
                    "map[string]interface {}",
                    Slot::Map(output_data),
                ),
            ];
            decode_struct(r, kind, "Job", "job.Job", &mut fields)?;
            Ok(j)
        })
    }
}

impl ServiceConfig {
    /// Decodes a `POST /jobs/init` body as the Go handler does, 1 MiB limit included.
    pub fn decode(body: &[u8]) -> Result<ServiceConfig, DecodeError> {
        Reader::decode(body, Some(REQUEST_BODY_LIMIT), |r, kind| {
            let mut c = ServiceConfig::default();
            let mut fields = [field("Runners", "[]string", Slot::Strings(&mut c.runners))];
            decode_struct(r, kind, "ServiceConfig", "job.ServiceConfig", &mut fields)?;
            Ok(c)
        })
    }
}

/// Decodes a body into Go's `map[string]string` (the `/register`, `/login` and `/unregister`
/// handlers, no size limit). Keys are exact; a null value reads as `""`.
pub fn decode_string_map(body: &[u8]) -> Result<BTreeMap<String, String>, DecodeError> {
    Reader::decode(body, None, |r, kind| {
        let mut map = BTreeMap::new();
        match kind {
            Kind::Object => {}
            Kind::Null => {
                r.read_literal()?;
                return Ok(map);
            }
            other => {
                r.mismatch(other, "map[string]string", None)?;
                return Ok(map);
            }
        }
        r.enter()?;
        let mut first = true;
        while let Some(key) = r.next_key(first)? {
            first = false;
            let value = match r.begin()? {
                Kind::String => r.read_string()?,
                Kind::Null => {
                    r.read_literal()?;
                    String::new()
                }
                other => {
                    r.mismatch(other, "string", None)?;
                    String::new()
                }
            };
            map.insert(key, value);
        }
        Ok(map)
    })
}

/// The `error` field of a response envelope as the Go client reads it (`map[string]any`, then a
/// string assertion); `None` when absent or not a string.
pub(crate) fn decode_string_map_lenient(body: &[u8]) -> Result<Option<String>, DecodeError> {
    Reader::decode(body, None, |r, kind| {
        match kind {
            Kind::Object => {}
            Kind::Null => {
                r.read_literal()?;
                return Ok(None);
            }
            other => {
                r.mismatch(other, "map[string]interface {}", None)?;
                return Ok(None);
            }
        }
        r.enter()?;
        let mut error = None;
        let mut first = true;
        while let Some(key) = r.next_key(first)? {
            first = false;
            let v = r.read_any(None)?;
            if key == "error" {
                error = v.as_str().map(str::to_owned);
            }
        }
        Ok(error)
    })
}

/// Decodes a struct of string fields only (e.g. `/version`), matching keys as Go does.
pub(crate) fn decode_string_struct<const N: usize>(
    body: &[u8],
    struct_name: &'static str,
    go_type: &'static str,
    names: [&'static str; N],
) -> Result<[String; N], DecodeError> {
    Reader::decode(body, None, |r, kind| {
        let mut values: [String; N] = std::array::from_fn(|_| String::new());
        let mut fields: Vec<Field<'_>> = names
            .iter()
            .zip(values.iter_mut())
            .map(|(n, v)| field(n, "string", Slot::Str(v)))
            .collect();
        decode_struct(r, kind, struct_name, go_type, &mut fields)?;
        drop(fields);
        Ok(values)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_maps_long_s_and_kelvin() {
        assert_eq!(fold("max_duration_ſec"), "MAX_DURATION_SEC");
        assert_eq!(fold("\u{212A}ey"), "KEY");
        assert_eq!(fold("Ünicode"), "ÜNICODE");
    }

    #[test]
    fn null_keeps_previous_string_and_number() {
        let c = Config::decode(
            br#"{"type":"recording","type":null,"max_duration_sec":5,"max_duration_sec":null}"#,
        )
        .unwrap();
        assert_eq!((c.job_type.as_str(), c.max_duration_sec), ("recording", 5));
    }

    #[test]
    fn repeated_runners_reuse_slots() {
        let c = ServiceConfig::decode(br#"{"Runners":["a","b"],"runners":[null]}"#).unwrap();
        assert_eq!(c.runners(), ["a"]);
    }
}
