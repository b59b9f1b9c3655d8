//! The HTTP API of calls-offloader (offloader.md §1), byte-compatible where a client can tell.
//!
//! Routing is done by hand in one fallback handler to reproduce gorilla/mux exactly: an unknown
//! path is 404 "404 page not found\n"; a /jobs route with the wrong method is 405 with an empty
//! body; /version, /register, /unregister and /login answer a wrong method themselves with 404;
//! job ids must match `[a-z0-9]{12,26}`. Bodies are read as raw bytes (the Go client sends no
//! Content-Type), so axum's `Json` extractor is never used.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;

use super::backend::{BackendError, JobSpec};
use super::clients::{Caller, Clients, RegisterFailure};
use super::jobs::{JobError, Jobs};
use crate::proto::auth::Authorization;
use crate::proto::offloader::error::StatusError;
use crate::proto::offloader::http::{
    NOT_FOUND_BODY, Route, RouteMatch, VersionInfo, error_envelope, login_success_body,
    register_success_body, route,
};
use crate::proto::offloader::{
    ApiError, AuthError, Config, DecodeError, REQUEST_BODY_LIMIT, RunnerPolicy, ServiceConfig,
    UnregisterError, decode_string_map, input_data_to_env,
};

/// Guard for the routes Go leaves unlimited; no legitimate body comes near it.
const OTHER_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// What the handlers share.
#[derive(Debug)]
pub struct App {
    pub clients: Clients,
    pub jobs: Arc<Jobs>,
    pub policy: RunnerPolicy,
    pub build_version: String,
    pub build_hash: String,
    pub build_date: String,
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
        NOT_FOUND_BODY,
    )
        .into_response()
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn error(e: &impl StatusError) -> Response {
    json_response(e.status(), e.envelope())
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

/// The single entry point: route as gorilla/mux does, then dispatch.
pub async fn handle(app: Arc<App>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let headers = parts.headers;
    let route = match route(parts.method.as_str(), &path) {
        RouteMatch::NotFound => return not_found_page(),
        RouteMatch::MethodNotAllowed => return StatusCode::METHOD_NOT_ALLOWED.into_response(),
        RouteMatch::Redirect(to) => {
            let location = HeaderValue::from_str(&to).unwrap_or(HeaderValue::from_static("/"));
            return (
                StatusCode::MOVED_PERMANENTLY,
                [(header::LOCATION, location)],
            )
                .into_response();
        }
        RouteMatch::Found(route) => route,
    };
    match route {
        Route::Version => version(&app),
        Route::Register => register(&app, &headers, &path, body).await,
        Route::Unregister => unregister(&app, &headers, &path, body).await,
        Route::Login => login(&app, body).await,
        Route::CreateJob => create_job(&app, &headers, &path, body).await,
        Route::Init => init(&app, &headers, &path, body).await,
        Route::GetJob(id) => get_job(&app, &headers, &path, &id).await,
        Route::DeleteJob(id) => delete_job(&app, &headers, &path, &id).await,
        Route::JobLogs(id) => job_logs(&app, &headers, &path, &id).await,
    }
}

/// Reads at most `limit + 1` bytes: enough for the Go decoder to tell "value complete within the
/// limit, rest ignored" from "request body too large", without buffering an unbounded body.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, DecodeError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| DecodeError::UnexpectedEof)?;
        buf.extend_from_slice(&chunk);
        if buf.len() > limit {
            buf.truncate(limit + 1);
            break;
        }
    }
    Ok(Bytes::from(buf))
}

/// `authHandler`: bearer if the header starts with exactly "Bearer ", else Basic.
async fn authenticate(app: &App, headers: &HeaderMap, path: &str) -> Result<Caller, AuthError> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match Authorization::parse(raw) {
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
    }
}

fn version(app: &App) -> Response {
    let info = VersionInfo {
        build_date: app.build_date.clone(),
        build_version: app.build_version.clone(),
        build_hash: app.build_hash.clone(),
        go_version: format!("rust (callsref {})", env!("CARGO_PKG_VERSION")),
    };
    json_response(200, info.to_response_body())
}

async fn register(app: &App, headers: &HeaderMap, path: &str, body: Body) -> Response {
    if !app.clients.settings().self_registration
        && let Err(e) = authenticate(app, headers, path).await
    {
        return error(&e);
    }
    let map = match read_body(body, OTHER_BODY_LIMIT)
        .await
        .and_then(|b| decode_string_map(&b))
    {
        Ok(m) => m,
        Err(e) => return json_response(400, error_envelope(400, &e.to_string())),
    };
    let client_id = map.get("clientID").map_or("", String::as_str);
    let auth_key = map.get("authKey").map_or("", String::as_str);
    match app.clients.register(client_id, auth_key).await {
        Ok(()) => json_response(201, register_success_body(client_id)),
        Err(RegisterFailure::Rejected(e)) => error(&e),
        Err(e @ RegisterFailure::Store(_)) => {
            json_response(400, error_envelope(400, &e.to_string()))
        }
    }
}

async fn unregister(app: &App, headers: &HeaderMap, path: &str, body: Body) -> Response {
    let settings = app.clients.settings();
    if settings.admin_secret.is_none() && !settings.self_registration {
        return error(&UnregisterError::NotEnabled);
    }
    let caller = match authenticate(app, headers, path).await {
        Ok(c) => c,
        Err(e) => return error(&UnregisterError::Auth(e)),
    };
    let map = match read_body(body, OTHER_BODY_LIMIT)
        .await
        .and_then(|b| decode_string_map(&b))
    {
        Ok(m) => m,
        Err(e) => return error(&UnregisterError::Decode(e)),
    };
    let client_id = map.get("clientID").map_or("", String::as_str);
    if client_id.is_empty() {
        return error(&UnregisterError::EmptyClientId);
    }
    if let Caller::Client(own) = &caller
        && own != client_id
    {
        return error(&UnregisterError::ClientIdMismatch);
    }
    match app.clients.unregister(client_id) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(super::store::StoreError::NotFound) => error(&UnregisterError::NotFound),
        Err(e) => json_response(400, error_envelope(400, &format!("unregister failed: {e}"))),
    }
}

async fn login(app: &App, body: Body) -> Response {
    let map = match read_body(body, OTHER_BODY_LIMIT)
        .await
        .and_then(|b| decode_string_map(&b))
    {
        Ok(m) => m,
        Err(e) => return error(&crate::proto::offloader::LoginError::Decode(e)),
    };
    let client_id = map.get("clientID").map_or("", String::as_str);
    let auth_key = map.get("authKey").map_or("", String::as_str);
    match app.clients.login(client_id, auth_key).await {
        Ok(token) => json_response(200, login_success_body(&token)),
        Err(e) => error(&e),
    }
}

fn job_error(e: JobError) -> Response {
    let api = match e {
        JobError::Create(BackendError::LimitReached) => ApiError::MaxConcurrentJobs,
        JobError::Create(e) => ApiError::Create(e.to_string()),
        JobError::Save(e) => ApiError::Save(format!("failed to save to store: {e}")),
        JobError::NotFound(_) => ApiError::NotFound,
        JobError::Running => ApiError::Running,
        JobError::Delete(e) => ApiError::Delete(e.to_string()),
        JobError::Logs(e) => ApiError::Logs(e.to_string()),
        JobError::Init(e) => ApiError::Init(e.to_string()),
        JobError::Corrupt(msg) => {
            return json_response(
                404,
                error_envelope(404, &format!("failed to get job {msg}")),
            );
        }
    };
    error(&api)
}

/// A 200 job body: Go writes it without a Content-Type, so it is sniffed as text/plain.
fn job_ok(job: &crate::proto::offloader::Job) -> Response {
    sniffed_ok(job.to_response_body(), false)
}

async fn create_job(app: &App, headers: &HeaderMap, path: &str, body: Body) -> Response {
    if let Err(e) = authenticate(app, headers, path).await {
        return error(&ApiError::Auth(e));
    }
    let config = match read_body(body, REQUEST_BODY_LIMIT)
        .await
        .and_then(|b| Config::decode(&b))
    {
        Ok(c) => c,
        Err(e) => return error(&ApiError::Decode(e)),
    };
    let job_type = match app.policy.check_config(&config) {
        Ok(t) => t,
        Err(e) => return error(&ApiError::InvalidConfig(e)),
    };
    let env = config
        .input_data
        .as_ref()
        .map(input_data_to_env)
        .unwrap_or_default();
    let spec = JobSpec {
        prefix: job_type.prefix(),
        image: config.runner.clone(),
        env,
    };
    let record = crate::proto::offloader::Job::new(config, "", 0);
    match app.jobs.create(record, spec).await {
        Ok(job) => job_ok(&job),
        Err(e) => job_error(e),
    }
}

async fn init(app: &App, headers: &HeaderMap, path: &str, body: Body) -> Response {
    if let Err(e) = authenticate(app, headers, path).await {
        return error(&ApiError::Auth(e));
    }
    let config = match read_body(body, REQUEST_BODY_LIMIT)
        .await
        .and_then(|b| ServiceConfig::decode(&b))
    {
        Ok(c) => c,
        Err(e) => return error(&ApiError::Decode(e)),
    };
    if let Err(e) = app.policy.check_service_config(&config) {
        return error(&ApiError::InvalidServiceConfig(e));
    }
    match app.jobs.init(config.runners()).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => job_error(e),
    }
}

async fn get_job(app: &App, headers: &HeaderMap, path: &str, id: &str) -> Response {
    if let Err(e) = authenticate(app, headers, path).await {
        return error(&ApiError::Auth(e));
    }
    match app.jobs.get(id) {
        Ok(job) => job_ok(&job),
        Err(e) => job_error(e),
    }
}

async fn delete_job(app: &App, headers: &HeaderMap, path: &str, id: &str) -> Response {
    if let Err(e) = authenticate(app, headers, path).await {
        return error(&ApiError::Auth(e));
    }
    match app.jobs.delete(id).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => job_error(e),
    }
}

async fn job_logs(app: &App, headers: &HeaderMap, path: &str, id: &str) -> Response {
    if let Err(e) = authenticate(app, headers, path).await {
        return error(&ApiError::Auth(e));
    }
    match app.jobs.logs(id).await {
        Ok(bytes) => {
            let empty = bytes.is_empty();
            sniffed_ok(bytes, empty)
        }
        Err(e) => job_error(e),
    }
}
