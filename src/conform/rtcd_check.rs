//! Expectations on rtcd's HTTP replies, as pure functions over a received [`Reply`]: the auth-family
//! JSON envelope, Go's plain-text errors, `/version` and `/system`. Each returns `Ok(what was seen)`
//! or `Err(what differed)`, which the suite turns into a pass or fail row.
//!
//! Plain-text bodies are compared byte for byte: Go's `http.Error` appends a newline, and a client
//! that compares bodies sees it. JSON bodies are compared as values (key order and the trailing
//! newline of Go's encoder are invisible to JSON clients).

use std::collections::BTreeMap;

use callsref::proto::rtcd::http::{CONTENT_TYPE_JSON, VersionInfo};

/// One HTTP answer as the suite saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The `Content-Type` header, empty when absent.
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body for a detail message, cut to a readable length.
    pub fn body_preview(&self) -> String {
        const MAX: usize = 160;
        let text = String::from_utf8_lossy(&self.body);
        if text.len() <= MAX {
            format!("{text:?}")
        } else {
            let cut = (0..=MAX)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            format!("{:?}… ({} bytes)", &text[..cut], self.body.len())
        }
    }

    fn seen(&self) -> String {
        format!("{} {}", self.status, self.body_preview())
    }
}

/// The outcome of one expectation: `Ok(observed)` or `Err(difference)`.
pub type Check = Result<String, String>;

fn expect_status(reply: &Reply, status: u16) -> Result<(), String> {
    if reply.status == status {
        Ok(())
    } else {
        Err(format!("expected status {status}, got {}", reply.seen()))
    }
}

/// A Go plain-text answer (`http.Error` or `http.NotFound`): the status, a `text/plain` type and
/// exactly `text` followed by the newline Go appends.
pub fn plain_text(reply: &Reply, status: u16, text: &str) -> Check {
    expect_status(reply, status)?;
    let want = format!("{text}\n");
    if reply.body != want.as_bytes() {
        let hint = if reply.body == text.as_bytes() {
            " (missing the trailing newline)"
        } else {
            ""
        };
        return Err(format!(
            "expected body {want:?}, got {}{hint}",
            reply.body_preview()
        ));
    }
    if !reply.content_type.starts_with("text/plain") {
        return Err(format!(
            "expected a text/plain content type, got {:?}",
            reply.content_type
        ));
    }
    Ok(format!("{} {want:?}", reply.status))
}

/// Go's `404 page not found` for a wrong method or an unknown path.
pub fn not_found_page(reply: &Reply) -> Check {
    plain_text(reply, 404, "404 page not found")
}

/// Parses the flat string-to-string JSON object of the auth family (`/register`, `/unregister`,
/// `/login`), checking the content type.
pub fn auth_object(reply: &Reply) -> Result<BTreeMap<String, String>, String> {
    if !reply.content_type.starts_with(CONTENT_TYPE_JSON) {
        return Err(format!(
            "expected content type {CONTENT_TYPE_JSON}, got {:?} with {}",
            reply.content_type,
            reply.seen()
        ));
    }
    serde_json::from_slice(&reply.body).map_err(|e| {
        format!(
            "body is not a flat JSON object of strings ({e}): {}",
            reply.seen()
        )
    })
}

/// An auth-family error: `{"code": "<status>", "error": <text>}` and nothing else. `error: None`
/// accepts any non-empty text (used where rtcd's text is Go's JSON decoder message).
pub fn auth_error(reply: &Reply, status: u16, error: Option<&str>) -> Check {
    expect_status(reply, status)?;
    let object = auth_object(reply)?;
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    if keys != ["code", "error"] {
        return Err(format!(
            "expected keys [code, error], got {keys:?} in {}",
            reply.seen()
        ));
    }
    if object["code"] != status.to_string() {
        return Err(format!(
            "expected \"code\": \"{status}\", got {:?}",
            object["code"]
        ));
    }
    let text = &object["error"];
    match error {
        Some(want) if text != want => Err(format!("expected error {want:?}, got {text:?}")),
        None if text.is_empty() => Err("expected a non-empty error text".into()),
        _ => Ok(format!(
            "{status} {{\"code\":\"{status}\",\"error\":{text:?}}}"
        )),
    }
}

/// An auth-family success: the status, `"code"` equal to it, and exactly the `extra` keys besides
/// `code`, each with the given value (`None` = any non-empty value). Returns the object.
pub fn auth_success(
    reply: &Reply,
    status: u16,
    extra: &[(&str, Option<&str>)],
) -> Result<BTreeMap<String, String>, String> {
    expect_status(reply, status)?;
    let object = auth_object(reply)?;
    let mut want_keys: Vec<&str> = extra.iter().map(|(k, _)| *k).chain(["code"]).collect();
    want_keys.sort_unstable();
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    if keys != want_keys {
        return Err(format!(
            "expected keys {want_keys:?}, got {keys:?} in {}",
            reply.seen()
        ));
    }
    if object["code"] != status.to_string() {
        return Err(format!(
            "expected \"code\": \"{status}\", got {:?}",
            object["code"]
        ));
    }
    for (key, want) in extra {
        let got = &object[*key];
        match want {
            Some(want) if got != want => {
                return Err(format!("expected {key:?}: {want:?}, got {got:?}"));
            }
            None if got.is_empty() => return Err(format!("expected a non-empty {key:?}")),
            _ => {}
        }
    }
    Ok(object)
}

/// A JSON answer equal (as a value) to `want`.
pub fn json_value(reply: &Reply, status: u16, want: &serde_json::Value) -> Check {
    expect_status(reply, status)?;
    if !reply.content_type.starts_with(CONTENT_TYPE_JSON) {
        return Err(format!(
            "expected content type {CONTENT_TYPE_JSON}, got {:?}",
            reply.content_type
        ));
    }
    let got: serde_json::Value = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("body is not JSON ({e}): {}", reply.seen()))?;
    if &got == want {
        Ok(format!("{status} {got}"))
    } else {
        Err(format!("expected {want}, got {got}"))
    }
}

/// `/version`: 200, exactly the six camelCase string keys, and a `buildVersion` the plugin accepts
/// with DC locking (a semver ≥ v1.1.0, rtcd.md §1.4 and §8.2). Returns the parsed body on success.
pub fn version(reply: &Reply) -> Result<VersionInfo, String> {
    expect_status(reply, 200)?;
    if !reply.content_type.starts_with(CONTENT_TYPE_JSON) {
        return Err(format!(
            "expected content type {CONTENT_TYPE_JSON}, got {:?}",
            reply.content_type
        ));
    }
    let object: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("body is not a JSON object ({e}): {}", reply.seen()))?;
    let mut want = [
        "buildDate",
        "buildHash",
        "buildVersion",
        "goArch",
        "goOS",
        "goVersion",
    ];
    want.sort_unstable();
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    if keys != want {
        return Err(format!("expected keys {want:?}, got {keys:?}"));
    }
    if let Some((key, _)) = object.iter().find(|(_, v)| !v.is_string()) {
        return Err(format!("{key:?} is not a string"));
    }
    serde_json::from_slice(&reply.body)
        .map_err(|e| format!("body does not parse as version info: {e}"))
}

/// The lowest `buildVersion` with which the Calls plugin turns on the DC signalling lock.
pub const MIN_DC_LOCK_VERSION: semver::Version = semver::Version::new(1, 1, 0);

/// Whether `buildVersion` is a `v`-prefixed (or bare) semver of at least v1.1.0.
pub fn build_version(build_version: &str) -> Check {
    let bare = build_version.strip_prefix('v').unwrap_or(build_version);
    let parsed = semver::Version::parse(bare)
        .map_err(|e| format!("buildVersion {build_version:?} is not a semver ({e})"))?;
    if parsed < MIN_DC_LOCK_VERSION {
        return Err(format!(
            "buildVersion {build_version} is below v{MIN_DC_LOCK_VERSION}, so the plugin turns off DC locking"
        ));
    }
    Ok(format!("buildVersion {build_version}"))
}

/// What `/system` answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SystemLoad {
    /// `{"cpu_load": x}` with a finite, non-negative x.
    Finite(f64),
    /// 200 with an empty body: rtcd's encoder failing on `+Inf` (no idle CPU in the last second).
    EmptyBody,
}

/// `/system`: 200, `{"cpu_load": <finite ≥ 0>}` and nothing else; or rtcd's empty-body quirk.
pub fn system(reply: &Reply) -> Result<SystemLoad, String> {
    expect_status(reply, 200)?;
    if reply.body.is_empty() {
        return Ok(SystemLoad::EmptyBody);
    }
    if !reply.content_type.starts_with(CONTENT_TYPE_JSON) {
        return Err(format!(
            "expected content type {CONTENT_TYPE_JSON}, got {:?}",
            reply.content_type
        ));
    }
    let object: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("body is not a JSON object ({e}): {}", reply.seen()))?;
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    if keys != ["cpu_load"] {
        return Err(format!("expected the single key cpu_load, got {keys:?}"));
    }
    match object["cpu_load"].as_f64() {
        Some(load) if load.is_finite() && load >= 0.0 => Ok(SystemLoad::Finite(load)),
        _ => Err(format!(
            "cpu_load is not a finite number ≥ 0: {}",
            object["cpu_load"]
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, content_type: &str, body: &str) -> Reply {
        Reply {
            status,
            content_type: content_type.into(),
            body: body.as_bytes().to_vec(),
        }
    }

    const TEXT: &str = "text/plain; charset=utf-8";

    #[test]
    fn plain_text_is_exact_including_newline() {
        assert!(plain_text(&reply(401, TEXT, "unauthorized\n"), 401, "unauthorized").is_ok());
        let err = plain_text(&reply(401, TEXT, "unauthorized"), 401, "unauthorized").unwrap_err();
        assert!(err.contains("missing the trailing newline"), "{err}");
        let err = plain_text(&reply(401, TEXT, "Unauthorized\n"), 401, "unauthorized").unwrap_err();
        assert!(err.contains("expected body"), "{err}");
        let err = plain_text(&reply(403, TEXT, "unauthorized\n"), 401, "unauthorized").unwrap_err();
        assert!(err.starts_with("expected status 401, got 403"), "{err}");
        let err = plain_text(
            &reply(401, "application/json", "unauthorized\n"),
            401,
            "unauthorized",
        );
        assert!(err.unwrap_err().contains("text/plain"));
        assert!(not_found_page(&reply(404, TEXT, "404 page not found\n")).is_ok());
    }

    #[test]
    fn auth_error_wants_exactly_code_and_error() {
        let good = reply(
            400,
            "application/json",
            "{\"code\":\"400\",\"error\":\"EOF\"}\n",
        );
        assert!(auth_error(&good, 400, Some("EOF")).is_ok());
        assert!(auth_error(&good, 400, None).is_ok());
        assert!(
            auth_error(&good, 400, Some("eof"))
                .unwrap_err()
                .contains("expected error")
        );
        let wrong_code = reply(
            400,
            "application/json",
            "{\"code\":\"401\",\"error\":\"EOF\"}",
        );
        assert!(
            auth_error(&wrong_code, 400, Some("EOF"))
                .unwrap_err()
                .contains("\"code\"")
        );
        let extra = reply(
            400,
            "application/json",
            "{\"code\":\"400\",\"error\":\"x\",\"y\":\"z\"}",
        );
        assert!(
            auth_error(&extra, 400, None)
                .unwrap_err()
                .contains("expected keys")
        );
        let numeric = reply(400, "application/json", "{\"code\":400,\"error\":\"x\"}");
        assert!(
            auth_error(&numeric, 400, None)
                .unwrap_err()
                .contains("strings")
        );
        let text = reply(400, TEXT, "{\"code\":\"400\",\"error\":\"x\"}");
        assert!(
            auth_error(&text, 400, None)
                .unwrap_err()
                .contains("content type")
        );
    }

    #[test]
    fn auth_success_checks_extra_keys() {
        let r = reply(
            201,
            "application/json",
            "{\"clientID\":\"abc\",\"code\":\"201\"}\n",
        );
        assert!(auth_success(&r, 201, &[("clientID", Some("abc"))]).is_ok());
        assert!(auth_success(&r, 201, &[("clientID", Some("abd"))]).is_err());
        assert!(
            auth_success(&r, 201, &[])
                .unwrap_err()
                .contains("expected keys")
        );
        let token = reply(
            200,
            "application/json",
            "{\"bearerToken\":\"t\",\"code\":\"200\"}",
        );
        let object = auth_success(&token, 200, &[("bearerToken", None)]).unwrap();
        assert_eq!(object["bearerToken"], "t");
    }

    #[test]
    fn version_wants_six_camel_case_strings() {
        let body = r#"{"buildDate":"d","buildVersion":"v1.2.6","buildHash":"h","goVersion":"g","goOS":"linux","goArch":"amd64"}"#;
        let info = version(&reply(200, "application/json", body)).unwrap();
        assert_eq!(info.build_version, "v1.2.6");
        let snake = r#"{"build_date":"d","build_version":"v1.2.6","build_hash":"h","go_version":"g","go_os":"l","go_arch":"a"}"#;
        assert!(
            version(&reply(200, "application/json", snake))
                .unwrap_err()
                .contains("expected keys")
        );
        let number = body.replace("\"h\"", "5");
        assert!(
            version(&reply(200, "application/json", &number))
                .unwrap_err()
                .contains("buildHash")
        );
    }

    #[test]
    fn build_version_needs_semver_at_least_1_1_0() {
        assert!(build_version("v1.2.6").is_ok());
        assert!(build_version("1.1.0").is_ok());
        assert!(build_version("v2.0.0-rc1").is_ok());
        assert!(
            build_version("v1.0.9")
                .unwrap_err()
                .contains("below v1.1.0")
        );
        assert!(
            build_version("master")
                .unwrap_err()
                .contains("not a semver")
        );
        assert!(build_version("").unwrap_err().contains("not a semver"));
    }

    #[test]
    fn system_load_must_be_finite() {
        let ok = reply(200, "application/json", "{\"cpu_load\":0.52}\n");
        assert_eq!(system(&ok), Ok(SystemLoad::Finite(0.52)));
        assert_eq!(
            system(&reply(200, "application/json", "")),
            Ok(SystemLoad::EmptyBody)
        );
        assert!(system(&reply(200, "application/json", "{\"cpu_load\":null}")).is_err());
        assert!(system(&reply(200, "application/json", "{\"cpu_load\":-1}")).is_err());
        assert!(system(&reply(200, "application/json", "{\"cpu\":1}")).is_err());
        assert!(system(&reply(500, "application/json", "{\"cpu_load\":1}")).is_err());
    }

    #[test]
    fn json_value_compares_values() {
        let r = reply(200, "application/json", "[{\"A\":1}]\n");
        assert!(json_value(&r, 200, &serde_json::json!([{"A": 1}])).is_ok());
        assert!(json_value(&r, 200, &serde_json::json!([{"A": 2}])).is_err());
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(200);
        let preview = reply(200, TEXT, &body).body_preview();
        assert!(preview.ends_with("(400 bytes)"), "{preview}");
    }
}
