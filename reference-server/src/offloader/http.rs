//! The HTTP API of calls-offloader (offloader.md §1), byte-compatible where a client can tell.
//!
//! Routing is done by hand in one fallback handler to reproduce gorilla/mux exactly: an unknown
//! path is 404 "404 page not found\n"; a /jobs route with the wrong method is 405 with an empty
//! body; /version, /register, /unregister and /login answer a wrong method themselves with 404;
//! job ids must match `[a-z0-9]{12,26}`. Bodies are read as raw bytes (the Go client sends no
//! Content-Type), so axum's `Json` extractor is never used.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::backend::JobSpec;
use super::clients::{AuthError, Caller, Clients};
use super::jobs::{JobError, Jobs};
use super::store::StoreError;
use super::wire;
use crate::proto::auth::Authorization;

/// Body limit of POST /jobs and /jobs/init (Go `MaxBytesReader`, 1 MiB).
pub const JOBS_BODY_LIMIT: usize = 1024 * 1024;
/// Guard for the routes Go leaves unlimited; no legitimate body comes near it.
const OTHER_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// What the handlers share.
#[derive(Debug)]
pub struct App {
    pub clients: Clients,
    pub jobs: Arc<Jobs>,
    pub image_registry: String,
    pub build_version: String,
    pub build_hash: String,
    pub build_date: String,
}

/// Which route a path names (gorilla/mux matching).
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Version,
    Register,
    Unregister,
    Login,
    Jobs,
    JobsInit,
    Job(&'a str),
    JobLogs(&'a str),
    None,
}

fn is_job_id(s: &str) -> bool {
    (12..=26).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn route(path: &str) -> Route<'_> {
    match path {
        "/version" => Route::Version,
        "/register" => Route::Register,
        "/unregister" => Route::Unregister,
        "/login" => Route::Login,
        "/jobs" => Route::Jobs,
        "/jobs/init" => Route::JobsInit,
        _ => {
            let Some(rest) = path.strip_prefix("/jobs/") else {
                return Route::None;
            };
            if let Some(id) = rest.strip_suffix("/logs") {
                if is_job_id(id) {
                    Route::JobLogs(id)
                } else {
                    Route::None
                }
            } else if is_job_id(rest) {
                Route::Job(rest)
            } else {
                Route::None
            }
        }
    }
}

fn not_found_page() -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        "404 page not found\n",
    )
        .into_response()
}

fn method_not_allowed() -> Response {
    StatusCode::METHOD_NOT_ALLOWED.into_response()
}

/// The audit envelope: the data keys plus "code" as a string, keys sorted (a Go map).
fn envelope(status: StatusCode, mut data: Map<String, Value>) -> Response {
    data.insert("code".into(), Value::String(status.as_u16().to_string()));
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        wire::go_json(&data),
    )
        .into_response()
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    let mut data = Map::new();
    data.insert("error".into(), Value::String(msg.to_string()));
    envelope(status, data)
}

/// A 200 with the body Go writes without a Content-Type (sniffed as text/plain).
fn sniffed_ok(body: impl Into<Body>, empty: bool) -> Response {
    let mut resp = Response::new(body.into());
    if !empty {
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    resp
}

/// The single entry point: route, then dispatch.
pub async fn handle(app: Arc<App>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let method = parts.method.clone();
    let headers = parts.headers;
    let r = route(&path);
    let limit = if matches!(r, Route::Jobs | Route::JobsInit) {
        JOBS_BODY_LIMIT
    } else {
        OTHER_BODY_LIMIT
    };
    let post = method == Method::POST;
    match r {
        Route::None => not_found_page(),
        Route::Version if method == Method::GET => version(&app),
        Route::Version => not_found_page(),
        Route::Register | Route::Unregister | Route::Login if !post => not_found_page(),
        Route::Jobs | Route::JobsInit if !post => method_not_allowed(),
        Route::Job(_) if method != Method::GET && method != Method::DELETE => method_not_allowed(),
        Route::JobLogs(_) if method != Method::GET => method_not_allowed(),
        Route::Register => register(&app, &headers, &path, body, limit).await,
        Route::Unregister => unregister(&app, &headers, &path, body, limit).await,
        Route::Login => login(&app, body, limit).await,
        Route::Jobs => create_job(&app, &headers, &path, body).await,
        Route::JobsInit => init(&app, &headers, &path, body).await,
        Route::Job(id) if method == Method::GET => get_job(&app, &headers, &path, id).await,
        Route::Job(id) => delete_job(&app, &headers, &path, id).await,
        Route::JobLogs(id) => job_logs(&app, &headers, &path, id).await,
    }
}

/// Reads a body up to `limit`; `Err` carries Go's MaxBytesReader text.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, String> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| "http: request body too large".to_owned())
}

fn auth_status(e: &AuthError) -> (StatusCode, String) {
    (StatusCode::UNAUTHORIZED, e.to_string())
}

/// `authHandler`: bearer if the header starts with exactly "Bearer ", else Basic.
async fn authenticate(app: &App, headers: &HeaderMap, path: &str) -> Result<Caller, Response> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let result = match Authorization::parse(raw) {
        Err(_) => Err(AuthError::InvalidHeader),
        Ok(Authorization::Bearer(token)) => app.clients.bearer(&token),
        Ok(Authorization::Basic {
            client_id,
            auth_key,
        }) => {
            app.clients
                .basic(&client_id, &auth_key, path == "/unregister")
                .await
        }
    };
    result.map_err(|e| {
        let (status, msg) = auth_status(&e);
        error(status, msg)
    })
}

fn version(app: &App) -> Response {
    // Struct field order of Go's VersionInfo.
    let body = format!(
        "{{\"buildDate\":{},\"buildVersion\":{},\"buildHash\":{},\"goVersion\":{}}}\n",
        wire::go_json(&app.build_date).trim_end(),
        wire::go_json(&app.build_version).trim_end(),
        wire::go_json(&app.build_hash).trim_end(),
        wire::go_json(&format!("rust (callsref {})", env!("CARGO_PKG_VERSION"))).trim_end(),
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn register(
    app: &App,
    headers: &HeaderMap,
    path: &str,
    body: Body,
    limit: usize,
) -> Response {
    if !app.clients.settings().self_registration
        && let Err(resp) = authenticate(app, headers, path).await
    {
        return resp;
    }
    let bytes = match read_body(body, limit).await {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let map = match wire::decode_string_map(&bytes) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let client_id = wire::field(&map, "clientID");
    match app
        .clients
        .register(client_id, wire::field(&map, "authKey"))
        .await
    {
        Ok(()) => {
            let mut data = Map::new();
            data.insert("clientID".into(), Value::String(client_id.to_owned()));
            envelope(StatusCode::CREATED, data)
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn unregister(
    app: &App,
    headers: &HeaderMap,
    path: &str,
    body: Body,
    limit: usize,
) -> Response {
    let settings = app.clients.settings();
    if settings.admin_secret.is_none() && !settings.self_registration {
        return error(StatusCode::FORBIDDEN, "unregister not enabled");
    }
    let caller = match authenticate(app, headers, path).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let bytes = match read_body(body, limit).await {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let map = match wire::decode_string_map(&bytes) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let client_id = wire::field(&map, "clientID");
    if client_id.is_empty() {
        return error(StatusCode::BAD_REQUEST, "client id should not be empty");
    }
    if let Caller::Client(own) = &caller
        && own != client_id
    {
        return error(StatusCode::FORBIDDEN, "client id not valid");
    }
    match app.clients.unregister(client_id) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("unregister failed: {e}")),
    }
}

async fn login(app: &App, body: Body, limit: usize) -> Response {
    let bytes = match read_body(body, limit).await {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let map = match wire::decode_string_map(&bytes) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match app
        .clients
        .login(wire::field(&map, "clientID"), wire::field(&map, "authKey"))
        .await
    {
        Ok(token) => {
            let mut data = Map::new();
            data.insert("bearerToken".into(), Value::String(token));
            envelope(StatusCode::OK, data)
        }
        Err(e) => error(StatusCode::BAD_REQUEST, format!("login failed: {e}")),
    }
}

fn job_error(e: &JobError) -> Response {
    let status = match e {
        JobError::NotFound(StoreError::NotFound) | JobError::NotFound(_) => StatusCode::NOT_FOUND,
        JobError::Running => StatusCode::BAD_REQUEST,
        JobError::Logs(_) => StatusCode::FORBIDDEN,
        JobError::Create(_) | JobError::Save(_) | JobError::Delete(_) | JobError::Init(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        JobError::Corrupt(_) => StatusCode::NOT_FOUND,
    };
    error(status, e)
}

async fn create_job(app: &App, headers: &HeaderMap, path: &str, body: Body) -> Response {
    if let Err(resp) = authenticate(app, headers, path).await {
        return resp;
    }
    let bytes = match read_body(body, JOBS_BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("failed to decode request body: {e}"),
            );
        }
    };
    let record = match wire::decode_job_config(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("failed to decode request body: {e}"),
            );
        }
    };
    if let Err(e) = wire::validate_job_config(&record, &app.image_registry) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let prefix = if record.job_type == "recording" {
        "calls-recorder"
    } else {
        "calls-transcriber"
    };
    let spec = JobSpec {
        prefix,
        image: record.runner.clone(),
        env: wire::job_env(&record.input_data),
    };
    match app.jobs.create(record, spec).await {
        Ok(job) => sniffed_ok(wire::encode_job(&job), false),
        Err(e) => job_error(&e),
    }
}

async fn init(app: &App, headers: &HeaderMap, path: &str, body: Body) -> Response {
    if let Err(resp) = authenticate(app, headers, path).await {
        return resp;
    }
    let bytes = match read_body(body, JOBS_BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("failed to decode request body: {e}"),
            );
        }
    };
    let runners = match wire::decode_service_config(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("failed to decode request body: {e}"),
            );
        }
    };
    if let Err(e) = wire::validate_service_config(&runners, &app.image_registry) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("invalid job service config: {e}"),
        );
    }
    match app.jobs.init(&runners).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => job_error(&e),
    }
}

async fn get_job(app: &App, headers: &HeaderMap, path: &str, id: &str) -> Response {
    if let Err(resp) = authenticate(app, headers, path).await {
        return resp;
    }
    match app.jobs.get(id) {
        Ok(job) => sniffed_ok(wire::encode_job(&job), false),
        Err(e) => job_error(&e),
    }
}

async fn delete_job(app: &App, headers: &HeaderMap, path: &str, id: &str) -> Response {
    if let Err(resp) = authenticate(app, headers, path).await {
        return resp;
    }
    match app.jobs.delete(id).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => job_error(&e),
    }
}

async fn job_logs(app: &App, headers: &HeaderMap, path: &str, id: &str) -> Response {
    if let Err(resp) = authenticate(app, headers, path).await {
        return resp;
    }
    match app.jobs.logs(id).await {
        Ok(bytes) => {
            let empty = bytes.is_empty();
            sniffed_ok(bytes, empty)
        }
        Err(e) => job_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_gorilla_patterns() {
        assert_eq!(route("/jobs/init"), Route::JobsInit);
        assert_eq!(route("/jobs/abcdef012345"), Route::Job("abcdef012345"));
        assert_eq!(
            route("/jobs/abcdef012345/logs"),
            Route::JobLogs("abcdef012345")
        );
        assert_eq!(route("/jobs/ABCDEFGHIJKL"), Route::None);
        assert_eq!(route("/jobs/abcdef01234"), Route::None, "11 characters");
        assert_eq!(route(&format!("/jobs/{}", "a".repeat(27))), Route::None);
        assert_eq!(route("/jobs/abcdef012345/stop"), Route::None);
        assert_eq!(route("/jobs/"), Route::None);
        assert_eq!(route("/debug/pprof/heap"), Route::None);
    }
}
