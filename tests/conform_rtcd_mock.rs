//! The rtcd suite must FAIL a target that deviates. A small in-process axum server (a mock: no real
//! rtcd can be made to deviate on purpose) answers most of what the suite asks correctly, but:
//! - `/login` with a wrong key answers 401 instead of rtcd's 400 (a wrong status);
//! - `/calls/{callID}/sessions` without credentials answers `Unauthorized` instead of
//!   `unauthorized\n` (a wrong body);
//! - `/ws` drops the connection on a frame it cannot decode, where rtcd logs and goes on (a dropped
//!   connection).
//!
//! The suite runs in `--quick` mode (the 10–30 s timer cases are not what this test is about).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use callsbench::conform::rtcd::{Outcome, Report, SuiteConfig, run_suite};
use callsref::proto::auth::Authorization;
use callsref::proto::rtcd::http::{AuthReply, Credentials, VersionInfo};
use callsref::proto::rtcd::ws::WsMessage;

#[derive(Default)]
struct Mock {
    /// clientID → authKey, self-registration on.
    clients: Mutex<HashMap<String, String>>,
    /// bearer token → clientID.
    tokens: Mutex<HashMap<String, String>>,
}

type Shared = Arc<Mock>;

fn json(status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut body = serde_json::to_vec(&body).unwrap();
    body.push(b'\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

impl Mock {
    fn client_of(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok();
        match Authorization::parse(value).ok()? {
            Authorization::Basic {
                client_id,
                auth_key,
            } => (self.clients.lock().unwrap().get(&client_id) == Some(&auth_key))
                .then_some(client_id),
            Authorization::Bearer(token) => self.tokens.lock().unwrap().get(&token).cloned(),
        }
    }
}

async fn version(method: Method) -> Response {
    if method != Method::GET {
        return not_found();
    }
    json(
        StatusCode::OK,
        VersionInfo {
            build_version: "v1.2.6".into(),
            ..VersionInfo::default()
        },
    )
}

async fn system(method: Method) -> Response {
    if method != Method::GET {
        return not_found();
    }
    json(StatusCode::OK, serde_json::json!({"cpu_load": 0.25}))
}

async fn register(State(mock): State<Shared>, method: Method, body: Bytes) -> Response {
    if method != Method::POST {
        return not_found();
    }
    let Ok(creds) = serde_json::from_slice::<Credentials>(&body) else {
        return json(StatusCode::BAD_REQUEST, AuthReply::error(400, "EOF"));
    };
    mock.clients
        .lock()
        .unwrap()
        .insert(creds.client_id.clone(), creds.auth_key);
    json(StatusCode::CREATED, AuthReply::registered(creds.client_id))
}

async fn login(State(mock): State<Shared>, method: Method, body: Bytes) -> Response {
    if method != Method::POST {
        return not_found();
    }
    let creds: Credentials = serde_json::from_slice(&body).unwrap_or_default();
    let known = mock.clients.lock().unwrap().get(&creds.client_id) == Some(&creds.auth_key);
    if !known {
        // DEVIATION: rtcd answers 400 here.
        return json(
            StatusCode::UNAUTHORIZED,
            AuthReply::error(401, "login failed: authentication failed"),
        );
    }
    let token = format!("{:0>32}", mock.tokens.lock().unwrap().len());
    mock.tokens
        .lock()
        .unwrap()
        .insert(token.clone(), creds.client_id);
    json(StatusCode::OK, AuthReply::logged_in(token))
}

async fn sessions(
    State(mock): State<Shared>,
    headers: HeaderMap,
    Path(_call): Path<String>,
) -> Response {
    if mock.client_of(&headers).is_none() {
        // DEVIATION: rtcd answers "unauthorized\n".
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    text(
        StatusCode::NOT_FOUND,
        "failed to get session configs: group not found\n",
    )
}

async fn ws(State(mock): State<Shared>, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    match mock.client_of(&headers) {
        Some(client_id) => upgrade.on_upgrade(move |socket| serve_ws(socket, client_id)),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn serve_ws(mut socket: WebSocket, client_id: String) {
    let hello = WsMessage::Hello {
        client_id,
        conn_id: callsref::proto::rtcd::ids::new_id(&mut rand::rng()),
    };
    if socket
        .send(Message::Binary(hello.encode().into()))
        .await
        .is_err()
    {
        return;
    }
    while let Some(Ok(message)) = socket.recv().await {
        let Message::Binary(frame) = message else {
            continue;
        };
        match WsMessage::decode(&frame) {
            Ok(WsMessage::Leave { session_id }) => {
                let close = WsMessage::Close { session_id }.encode();
                if socket.send(Message::Binary(close.into())).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            // DEVIATION: rtcd logs an undecodable frame and keeps the connection.
            Err(_) => return,
        }
    }
}

async fn start_mock() -> SocketAddr {
    let app = Router::new()
        .route("/version", any(version))
        .route("/system", any(system))
        .route("/register", any(register))
        .route("/login", any(login))
        .route("/calls/{call}/sessions", any(sessions))
        .route("/ws", any(ws))
        .with_state(Shared::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn outcome(report: &Report, id: &str) -> (Outcome, String) {
    let case = report
        .case(id)
        .unwrap_or_else(|| panic!("case {id} did not run:\n{}", report.render_table()));
    (case.outcome, case.detail.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_deviant_target_fails_exactly_where_it_deviates() {
    let addr = start_mock().await;
    let report = run_suite(SuiteConfig {
        url: format!("http://{addr}").parse().unwrap(),
        admin_secret: None,
        quick: true,
        ice_tcp: false,
    })
    .await
    .unwrap();
    let table = report.render_table();

    // What the mock does right passes, so the failures below are not the suite failing everything.
    for id in [
        "http.version.get",
        "http.system.get",
        "http.register.self_registration",
        "http.login.ok",
        "ws.hello.basic",
        "ws.text_frame_ignored",
        "ws.leave.close",
    ] {
        assert_eq!(outcome(&report, id).0, Outcome::Pass, "{id}\n{table}");
    }

    // A wrong status.
    let (result, detail) = outcome(&report, "http.login.wrong_key");
    assert_eq!(result, Outcome::Fail, "{table}");
    assert!(
        detail.starts_with("expected status 400, got 401"),
        "{detail}"
    );

    // A wrong body.
    let (result, detail) = outcome(&report, "http.sessions.auth.none");
    assert_eq!(result, Outcome::Fail, "{table}");
    assert!(
        detail.contains("expected body \"unauthorized\\n\""),
        "{detail}"
    );
    assert!(detail.contains("Unauthorized"), "{detail}");

    // A dropped connection: the join/leave after the garbage frame either cannot be sent or gets
    // no close, depending on whether the drop reached us before the send.
    let (result, detail) = outcome(&report, "ws.malformed.garbage");
    assert_eq!(result, Outcome::Fail, "{table}");
    assert!(
        detail.contains("did not survive")
            && (detail.contains("send failed") || detail.contains("no close for session")),
        "{detail}"
    );

    // The slow cases are skipped, not failed, under --quick; the exit code says "failed".
    assert_eq!(outcome(&report, "ws.no_offer.close").0, Outcome::Skip);
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_deviant_target_binary_exits_1_and_writes_json() {
    let addr = start_mock().await;
    let dir = std::env::temp_dir().join(format!(
        "conform-rtcd-{}-{}",
        std::process::id(),
        addr.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("results.json");
    let args = [
        "conform".to_owned(),
        "rtcd".to_owned(),
        "--url".to_owned(),
        format!("http://{addr}"),
        "--quick".to_owned(),
        "--out".to_owned(),
        out.display().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_callsbench"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAIL  http.login.wrong_key")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("PASS  http.version.get")),
        "{stdout}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(json["suite"], "rtcd");
    assert_eq!(json["facts"]["self_registration"], true);
    assert_eq!(json["facts"]["build_version"], "v1.2.6");
    let cases = json["cases"].as_array().unwrap();
    let row = cases
        .iter()
        .find(|c| c["id"] == "ws.malformed.garbage")
        .unwrap();
    assert_eq!(row["outcome"], "fail");
    let fails = cases.iter().filter(|c| c["outcome"] == "fail").count();
    assert_eq!(json["summary"]["fail"].as_u64().unwrap() as usize, fails);
    assert!(fails >= 3);
    std::fs::remove_dir_all(&dir).unwrap();
}
