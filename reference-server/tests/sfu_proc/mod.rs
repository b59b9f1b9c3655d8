//! Runs `callsref sfu` as a child process on ephemeral ports and talks to it as the plugin would:
//! a minimal HTTP/1.1 client and a msgpack WebSocket client.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use callsref::proto::rtcd::WsMessage;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub const ADMIN_SECRET: &str = "admin-secret-for-tests-0123456789";

/// A running server; killed on drop.
pub struct Server {
    pub child: Child,
    pub http: SocketAddr,
    pub udp_port: u16,
    /// The ICE-TCP listener's port (0 from a server that reports none).
    pub tcp_port: u16,
    pub dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// Starts a server with self-registration and admin enabled, everything on loopback.
    pub fn start(name: &str) -> Server {
        Server::start_with(name, &[])
    }

    /// As [`Server::start`], with extra `callsref sfu` arguments.
    pub fn start_with(name: &str, extra: &[&str]) -> Server {
        let dir = std::env::temp_dir().join(format!("callsref-sfu-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                "[api.http]\nlisten_address = \"127.0.0.1:0\"\n\
                 [api.security]\nallow_self_registration = true\nenable_admin = true\n\
                 admin_secret_key = \"{ADMIN_SECRET}\"\n\
                 [rtc]\nice_address_udp = \"127.0.0.1\"\nice_port_udp = 0\n\
                 ice_address_tcp = \"127.0.0.1\"\nice_port_tcp = 0\n\
                 [store]\ndata_source = \"{}\"\n",
                dir.join("db").display()
            ),
        )
        .unwrap();
        let ready = dir.join("ready.json");
        let child = Command::new(env!("CARGO_BIN_EXE_callsref"))
            .args(["sfu", "--config"])
            .arg(&cfg)
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&ready)
                && t.ends_with('\n')
            {
                break t;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            std::thread::sleep(Duration::from_millis(20));
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        Server {
            child,
            http: v["http"].as_str().unwrap().parse().unwrap(),
            udp_port: v["udp"].as_u64().unwrap() as u16,
            tcp_port: v["tcp"].as_u64().unwrap_or(0) as u16,
            dir,
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; returns how long it took.
    pub fn terminate(&mut self, timeout: Duration) -> Option<(Duration, std::process::ExitStatus)> {
        let t0 = Instant::now();
        let ok = Command::new("sh")
            .args(["-c", &format!("kill -TERM {}", self.child.id())])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        while t0.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((t0.elapsed(), status));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// One HTTP/1.1 request; returns (status, headers lower-cased, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: &str,
    ) -> (u16, String, String) {
        let mut s = TcpStream::connect(self.http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head[9..12].parse().unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        (status, head.to_ascii_lowercase(), body)
    }

    pub fn get(&self, path: &str, auth: Option<&str>) -> (u16, String) {
        let (s, _, b) = self.request("GET", path, auth, "");
        (s, b)
    }

    pub fn post(&self, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
        let (s, _, b) = self.request("POST", path, auth, body);
        (s, b)
    }

    /// The value of a metric line (exact name with labels), if present.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics", None);
        body.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Registers a client (self-registration) and returns its Basic header value.
    pub fn register(&self, client: &str) -> String {
        let key = format!("{client}-key-0123456789abcdefghijklmnopqrstuvwxyz");
        let (s, b) = self.post(
            "/register",
            None,
            &format!("{{\"clientID\":\"{client}\",\"authKey\":\"{key}\"}}"),
        );
        assert_eq!(s, 201, "{b}");
        basic(client, &key)
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((len, rest)) = s.split_once("\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

pub fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/ws` with the given Authorization header.
pub async fn ws_connect(
    http: SocketAddr,
    auth: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{http}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", auth.parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// Next decoded frame within `timeout` (pings are answered by tungstenite itself).
pub async fn ws_next(ws: &mut Ws, timeout: Duration) -> Option<WsMessage> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Binary(b) = m {
            return Some(WsMessage::decode(&b).unwrap());
        }
    }
}

pub async fn ws_send(ws: &mut Ws, m: &WsMessage) {
    ws.send(Message::Binary(m.encode().into())).await.unwrap();
}
