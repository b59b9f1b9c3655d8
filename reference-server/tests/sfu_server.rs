//! `callsref sfu` as a process: HTTP routes × auth cases with rtcd's exact statuses and bodies,
//! and the `/ws` protocol (hello, msgpack framing, malformed frames, join/leave/close).

mod sfu_proc;

use std::process::Command;
use std::time::Duration;

use callsref::proto::rtcd::{JoinData, WsMessage};
use sfu_proc::{ADMIN_SECRET, Server, basic, ws_connect, ws_next, ws_send};

#[test]
fn http_routes_and_auth_match_rtcd() {
    let srv = Server::start("http");
    let (s, b) = srv.get("/version", None);
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["buildVersion"], "v1.2.6");
    assert!(b.ends_with("}\n"));
    assert_eq!(
        srv.post("/version", None, ""),
        (404, "404 page not found\n".into())
    );

    let (s, b) = srv.get("/system", None);
    assert_eq!(s, 200);
    let load = serde_json::from_str::<serde_json::Value>(&b).unwrap()["cpu_load"].as_f64();
    assert!(load.is_some_and(f64::is_finite), "{b}");

    let short = r#"{"clientID":"c1","authKey":"short"}"#;
    assert_eq!(
        srv.post("/register", None, short),
        (
            400,
            "{\"code\":\"400\",\"error\":\"registration failed: key not long enough\"}\n".into()
        )
    );
    let key = "k".repeat(32);
    let creds = format!("{{\"clientID\":\"c1\",\"authKey\":\"{key}\"}}");
    assert_eq!(
        srv.post("/register", None, &creds),
        (201, "{\"clientID\":\"c1\",\"code\":\"201\"}\n".into())
    );
    assert_eq!(
        srv.post("/register", None, &creds),
        (
            400,
            "{\"code\":\"400\",\"error\":\"registration failed: already registered\"}\n".into()
        )
    );
    assert_eq!(
        srv.post("/register", None, ""),
        (400, "{\"code\":\"400\",\"error\":\"EOF\"}\n".into())
    );

    let (s, b) = srv.post("/login", None, &creds);
    assert_eq!(s, 200, "{b}");
    let token = serde_json::from_str::<serde_json::Value>(&b).unwrap()["bearerToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 32);
    let bad = format!("{{\"clientID\":\"c1\",\"authKey\":\"{}\"}}", "x".repeat(32));
    assert_eq!(
        srv.post("/login", None, &bad),
        (
            400,
            "{\"code\":\"400\",\"error\":\"login failed: authentication failed\"}\n".into()
        )
    );

    // Sessions routes: a real client (Basic or Bearer) gets 404 with the reason, admin gets 401.
    let bearer = format!("Bearer {token}");
    let c1 = basic("c1", &key);
    for auth in [c1.as_str(), bearer.as_str()] {
        assert_eq!(
            srv.get("/calls/call1/sessions", Some(auth)),
            (
                404,
                "failed to get session configs: group not found\n".into()
            )
        );
    }
    assert_eq!(
        srv.get("/calls/call1/sessions", Some(&basic("", ADMIN_SECRET))),
        (401, "unauthorized\n".into())
    );
    assert_eq!(
        srv.get("/calls/call1/sessions", None),
        (401, "unauthorized\n".into())
    );
    assert_eq!(
        srv.get("/calls/call1/sessions", Some("Bearer nope")),
        (401, "unauthorized\n".into())
    );
    let (_, head, _) = srv.request("GET", "/calls/call1/sessions", None, "");
    assert!(
        head.contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );

    // Unregister: another client's id is forbidden, self works, then login fails.
    assert_eq!(
        srv.post("/unregister", Some(&c1), r#"{"clientID":"c2"}"#),
        (
            403,
            "{\"code\":\"403\",\"error\":\"client id not valid\"}\n".into()
        )
    );
    assert_eq!(
        srv.post("/unregister", Some("Basic !!!"), r#"{"clientID":"c1"}"#),
        (
            401,
            "{\"code\":\"401\",\"error\":\"authentication failed: invalid auth header\"}\n".into()
        )
    );
    assert_eq!(
        srv.post("/unregister", Some(&c1), r#"{"clientID":"c1"}"#),
        (200, "{\"code\":\"200\"}\n".into())
    );
    assert_eq!(
        srv.post("/login", None, &creds),
        (400, "{\"code\":\"400\",\"error\":\"login failed: authentication failed: error: not found\"}\n".into())
    );
    // The old token died with the client.
    assert_eq!(
        srv.get("/calls/call1/sessions", Some(&bearer)),
        (401, "unauthorized\n".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_hello_join_malformed_frame_and_leave() {
    let srv = Server::start("ws");
    let auth = srv.register("plugin1");

    // Failed auth: HTTP 200 with an empty body, no upgrade.
    let err = ws_connect(
        srv.http,
        &basic("plugin1", "wrong-key-0123456789abcdefghijklmnop"),
    )
    .await
    .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 200),
        e => panic!("expected a plain HTTP answer, got {e}"),
    }

    let mut ws = ws_connect(srv.http, &auth).await.unwrap();
    match ws_next(&mut ws, Duration::from_secs(5)).await {
        Some(WsMessage::Hello { client_id, conn_id }) => {
            assert_eq!(client_id, "plugin1");
            assert_eq!(conn_id.len(), 26);
        }
        other => panic!("expected hello, got {other:?}"),
    }
    // A malformed frame is counted; the connection stays usable.
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        vec![0xc1, 0x00].into(),
    ))
    .await
    .unwrap();
    let join = JoinData {
        call_id: "call1".into(),
        user_id: "user1".into(),
        session_id: "sessionaaaaaaaaaaaaaaaaaa1".into(),
        channel_id: Some("chan1".into()),
        av1_support: Some(false),
        dc_signaling: Some(true),
    };
    ws_send(&mut ws, &WsMessage::Join(join)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let listed = loop {
        let (s, b) = srv.get("/calls/call1/sessions", Some(&auth));
        if s == 200 {
            break b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "session never listed: {s} {b}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        listed,
        "[{\"GroupID\":\"plugin1\",\"CallID\":\"call1\",\"UserID\":\"user1\",\"SessionID\":\"sessionaaaaaaaaaaaaaaaaaa1\",\
         \"Props\":{\"av1Support\":false,\"channelID\":\"chan1\",\"dcSignaling\":true}}]\n"
    );
    let (s, b) = srv.get("/calls/call1/sessions/nope", Some(&auth));
    assert_eq!(
        (s, b.as_str()),
        (404, "failed to get session config: session not found\n")
    );
    assert_eq!(
        srv.metric("rtcd_rtc_sessions_total{groupID=\"plugin1\"}"),
        Some(1.0)
    );
    assert_eq!(
        srv.metric("rtcd_rtc_errors_total{groupID=\"plugin1\",type=\"signaling\"}"),
        Some(1.0)
    );
    assert_eq!(
        srv.metric("rtcd_ws_connections_total{clientID=\"plugin1\"}"),
        Some(1.0)
    );
    assert!(
        srv.metric("rtcd_process_resident_memory_bytes")
            .is_some_and(|v| v > 0.0)
    );

    ws_send(
        &mut ws,
        &WsMessage::Leave {
            session_id: "sessionaaaaaaaaaaaaaaaaaa1".into(),
        },
    )
    .await;
    match ws_next(&mut ws, Duration::from_secs(5)).await {
        Some(WsMessage::Close { session_id }) => {
            assert_eq!(session_id, "sessionaaaaaaaaaaaaaaaaaa1")
        }
        other => panic!("expected close, got {other:?}"),
    }
    assert_eq!(
        srv.metric("rtcd_rtc_sessions_total{groupID=\"plugin1\"}"),
        Some(0.0)
    );
    let (s, _) = srv.get("/calls/call1/sessions", Some(&auth));
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_open_sessions_until_the_drain_timeout() {
    // No sessions: SIGTERM stops the server at once.
    let mut idle = Server::start("drain-idle");
    let (took, status) = idle
        .terminate(Duration::from_secs(5))
        .expect("idle server exits");
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // A live session keeps the server draining (API still up) until --drain-timeout.
    let mut srv = Server::start_with("drain-busy", &["--drain-timeout", "2"]);
    let auth = srv.register("drainer");
    let mut ws = ws_connect(srv.http, &auth).await.unwrap();
    assert!(matches!(
        ws_next(&mut ws, Duration::from_secs(5)).await,
        Some(WsMessage::Hello { .. })
    ));
    let join = JoinData {
        call_id: "call1".into(),
        user_id: "user1".into(),
        session_id: "drainaaaaaaaaaaaaaaaaaaaa1".into(),
        ..Default::default()
    };
    ws_send(&mut ws, &WsMessage::Join(join)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while srv.metric("rtcd_rtc_sessions_total{groupID=\"drainer\"}") != Some(1.0) {
        assert!(std::time::Instant::now() < deadline, "session never opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = std::time::Instant::now();
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", srv.child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "exited without draining"
    );
    assert_eq!(srv.get("/version", None).0, 200, "API down while draining");
    let status = loop {
        if let Some(s) = srv.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "drain timeout ignored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
}
