//! Routing, authentication, and the register/login/unregister cases (offloader.md §1, §9.1).

use callsref::proto::auth::Authorization;
use callsref::proto::offloader::http::{NOT_FOUND_BODY, login_success_body, register_success_body};
use serde_json::json;

use super::{Suite, random_client, random_key};

const G_ROUTE: &str = "routing";
const G_AUTH: &str = "auth";
const G_REG: &str = "register";

fn creds(id: &str, key: &str) -> String {
    json!({"clientID": id, "authKey": key}).to_string()
}

/// Metadata and routing: no credentials needed.
pub(crate) async fn routing(s: &mut Suite) {
    let r = s.http.get("/version", None).await;
    let res = (|| {
        let v = r
            .json()
            .ok_or_else(|| format!("{} {:?} is not JSON", r.status, r.body))?;
        if r.status != 200 || r.content_type.as_deref() != Some("application/json") {
            return Err(format!(
                "status {} content-type {:?}",
                r.status, r.content_type
            ));
        }
        for k in ["buildDate", "buildVersion", "buildHash", "goVersion"] {
            v.get(k)
                .and_then(|x| x.as_str())
                .ok_or(format!("{k} missing or not a string"))?;
        }
        let ver = v["buildVersion"].as_str().unwrap_or_default();
        if !plugin_accepts(ver) {
            return Err(format!(
                "buildVersion {ver:?} fails the plugin gate (>= v0.9.0, \"\", master, dev*)"
            ));
        }
        Ok(format!("buildVersion {ver:?}"))
    })();
    s.record(G_ROUTE, "version", res);

    for (method, path) in [
        ("POST", "/version"),
        ("GET", "/register"),
        ("GET", "/login"),
        ("GET", "/unregister"),
    ] {
        let r = s.http.send(method, path, None, None).await;
        s.record(
            G_ROUTE,
            &format!("{method} {path} is 404"),
            r.expect(404, NOT_FOUND_BODY),
        );
    }
    for path in ["/jobs", "/jobs/init"] {
        let r = s.http.get(path, None).await;
        s.record(G_ROUTE, &format!("GET {path} is 405"), r.expect(405, ""));
    }
    for (name, path) in [
        ("unknown path is 404", "/nope"),
        ("upper-case job id is 404", "/jobs/ABCDEFGHIJKL"),
        ("11-character job id is 404", "/jobs/abcdefghijk"),
        (
            "27-character job id is 404",
            "/jobs/abcdefghijklmnopqrstuvwxyz0",
        ),
    ] {
        let r = s.http.get(path, None).await;
        s.record(G_ROUTE, name, r.expect(404, NOT_FOUND_BODY));
    }
    let r = s.http.post("/jobs/abcdef012345/stop", None, "").await;
    s.record(
        G_ROUTE,
        "POST /jobs/{id}/stop is 404",
        r.expect(404, NOT_FOUND_BODY),
    );
    let r = s.http.send("POST", "/jobs/abcdef012345", None, None).await;
    s.record(G_ROUTE, "POST /jobs/{id} is 405", r.expect(405, ""));
}

/// The Calls plugin's version gate (offloader.md §3).
fn plugin_accepts(v: &str) -> bool {
    if v.is_empty() || v == "master" || v.starts_with("dev") {
        return true;
    }
    let core = v
        .trim_start_matches('v')
        .split(['-', '+'])
        .next()
        .unwrap_or("");
    let parts: Vec<u64> = core.split('.').filter_map(|p| p.parse().ok()).collect();
    parts.len() == 3 && (parts[0], parts[1], parts[2]) >= (0, 9, 0)
}

/// Detects self-registration and obtains a working client.
pub(crate) async fn setup(s: &mut Suite) {
    // An unauthenticated /register succeeds (or fails validation) only with self-registration on.
    let probe = s
        .http
        .post("/register", None, creds(&random_client(), "short"))
        .await;
    s.self_registration = probe.status == 400;
    if s.client.is_some() {
        return;
    }
    let id = random_client();
    let key = random_key();
    let auth = if s.self_registration {
        None
    } else {
        s.admin_auth()
    };
    if !s.self_registration && auth.is_none() {
        return;
    }
    let r = s
        .http
        .post("/register", auth.as_deref(), creds(&id, &key))
        .await;
    let ok = r.expect(201, &register_success_body(&id));
    if ok.is_ok() {
        s.client = Some((id, key));
    }
    s.record(G_REG, "register returns 201 {clientID, code:\"201\"}", ok);
}

/// Authentication rules of every protected route.
pub(crate) async fn auth_cases(s: &mut Suite) {
    let protected: [(&str, &str, Option<&str>); 5] = [
        ("POST", "/jobs", Some("{}")),
        ("POST", "/jobs/init", Some("{}")),
        ("GET", "/jobs/abcdef012345", None),
        ("DELETE", "/jobs/abcdef012345", None),
        ("GET", "/jobs/abcdef012345/logs", None),
    ];
    for (m, p, b) in protected {
        let r = s.http.send(m, p, None, b.map(str::to_owned)).await;
        s.record(
            G_AUTH,
            &format!("{m} {p} without auth is 401"),
            r.expect_error(401, "authentication failed: invalid auth header"),
        );
    }
    let probe = "/jobs/zzzzzzzzzzzz";
    let r = s
        .http
        .get(
            probe,
            Some(&Authorization::basic("", "not-the-admin-secret").to_header_value()),
        )
        .await;
    s.record(
        G_AUTH,
        "empty username, non-admin password",
        r.expect_error(401, "authentication failed: unauthorized"),
    );
    let r = s.http.get(probe, Some("bearer abcdef")).await;
    s.record(
        G_AUTH,
        "lower-case bearer scheme fails",
        r.expect_error(401, "authentication failed: invalid auth header"),
    );
    let r = s.http.get(probe, Some("Bearer garbage-token")).await;
    s.record(
        G_AUTH,
        "garbage bearer token",
        r.expect_error(401, "authentication failed: token is invalid"),
    );
    let not_found = "failed to get job failed to get job: error: not found";

    match s.opts.admin_secret.clone() {
        Some(secret) => {
            for user in ["", "anyone"] {
                let r = s
                    .http
                    .get(
                        probe,
                        Some(&Authorization::basic(user, &secret).to_header_value()),
                    )
                    .await;
                s.record(
                    G_AUTH,
                    &format!("admin secret accepted with user {user:?}"),
                    r.expect_error(404, not_found),
                );
            }
        }
        None => s.skip(
            G_AUTH,
            "admin secret accepted",
            "no --admin-secret (admin disabled or unknown)",
        ),
    }

    let stranger = Authorization::basic(random_client(), random_key()).to_header_value();
    if s.self_registration {
        let id = random_client();
        let key = random_key();
        let r = s
            .http
            .get(
                probe,
                Some(&Authorization::basic(&id, &key).to_header_value()),
            )
            .await;
        s.record(
            G_AUTH,
            "self-registration: new client accepted",
            r.expect_error(404, not_found),
        );
        let r = s.http.post("/login", None, creds(&id, &key)).await;
        s.record(
            G_AUTH,
            "self-registration: login works after auto-registration",
            expect_login(&r),
        );
        let r = s
            .http
            .get(
                probe,
                Some(&Authorization::basic(random_client(), "short").to_header_value()),
            )
            .await;
        s.record(
            G_AUTH,
            "self-registration: key under 32 is 401 unauthorized",
            r.expect_error(401, "unauthorized"),
        );
        let r = s
            .http
            .get(
                probe,
                Some(&Authorization::basic(&id, random_key()).to_header_value()),
            )
            .await;
        s.record(
            G_AUTH,
            "self-registration: wrong key is 401",
            r.expect_error(401, "authentication failed"),
        );
    } else {
        let r = s.http.get(probe, Some(&stranger)).await;
        s.record(
            G_AUTH,
            "unknown client is 401",
            r.expect_error(401, "authentication failed"),
        );
    }

    let Some((id, key)) = s.client.clone() else {
        s.skip(G_AUTH, "bearer cases", "no working client");
        return;
    };
    let first = s.http.post("/login", None, creds(&id, &key)).await;
    s.record(
        G_AUTH,
        "login returns a 32-character bearer token",
        expect_login(&first),
    );
    let t1 = token(&first);
    let r = s
        .http
        .get(
            probe,
            Some(&Authorization::Bearer(t1.clone()).to_header_value()),
        )
        .await;
    s.record(
        G_AUTH,
        "bearer token from /login works",
        r.expect_error(404, not_found),
    );
    let second = s.http.post("/login", None, creds(&id, &key)).await;
    let r = s
        .http
        .get(probe, Some(&Authorization::Bearer(t1).to_header_value()))
        .await;
    s.record(
        G_AUTH,
        "second login invalidates the first token",
        r.expect_error(401, "authentication failed: token is invalid"),
    );
    let t2 = token(&second);
    let r = s
        .http
        .get(
            probe,
            Some(&Authorization::Bearer(t2.clone()).to_header_value()),
        )
        .await;
    s.record(G_AUTH, "second token works", r.expect_error(404, not_found));
    if s.opts.admin_secret.is_some() || s.self_registration {
        // A bearer token is never admin: unregistering another client is refused.
        let other = random_client();
        let r = s
            .http
            .post(
                "/unregister",
                Some(&Authorization::Bearer(t2).to_header_value()),
                json!({"clientID": other}).to_string(),
            )
            .await;
        s.record(
            G_AUTH,
            "bearer token is never admin",
            r.expect_error(403, "client id not valid"),
        );
    }
    match (s.opts.slow, s.opts.session_minutes) {
        (true, Some(minutes)) if minutes <= 2 => {
            let login = s.http.post("/login", None, creds(&id, &key)).await;
            let t = Authorization::Bearer(token(&login)).to_header_value();
            tokio::time::sleep(std::time::Duration::from_secs(minutes * 60 + 1)).await;
            let r = s.http.get(probe, Some(&t)).await;
            s.record(
                G_AUTH,
                "expired bearer token",
                r.expect_error(401, "authentication failed: session is expired"),
            );
            let r = s.http.get(probe, Some(&t)).await;
            s.record(
                G_AUTH,
                "expired token is dropped",
                r.expect_error(401, "authentication failed: token is invalid"),
            );
        }
        _ => s.skip(
            G_AUTH,
            "expired bearer token",
            "needs --slow and --session-minutes 1 (the target's expiration_minutes)",
        ),
    }
}

fn token(r: &super::Resp) -> String {
    r.json()
        .and_then(|v| v["bearerToken"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn expect_login(r: &super::Resp) -> Result<String, String> {
    let t = token(r);
    if t.len() != 32
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "no 32-character base64url token in {} {:?}",
            r.status, r.body
        ));
    }
    r.expect(200, &login_success_body(&t))
}

/// /register, /login and /unregister.
pub(crate) async fn register_login_unregister(s: &mut Suite) {
    let admin = s.admin_auth();
    let reg_auth = if s.self_registration {
        None
    } else {
        admin.clone().or(s.client_auth())
    };
    if reg_auth.is_none() && !s.self_registration {
        s.skip(
            G_REG,
            "register errors",
            "registration needs admin or a client",
        );
    } else {
        let a = reg_auth.as_deref();
        let r = s
            .http
            .post("/register", a, creds(&random_client(), "short"))
            .await;
        s.record(
            G_REG,
            "key not long enough",
            r.expect_error(400, "registration failed: key not long enough"),
        );
        let r = s.http.post("/register", a, creds("", &random_key())).await;
        s.record(
            G_REG,
            "empty clientID",
            r.expect_error(400, "registration failed: error: empty key"),
        );
        if let Some((id, _)) = s.client.clone() {
            let r = s.http.post("/register", a, creds(&id, &random_key())).await;
            s.record(
                G_REG,
                "already registered",
                r.expect_error(400, "registration failed: already registered"),
            );
        }
        let r = s.http.post("/register", a, "").await;
        s.record(G_REG, "empty body is 400 EOF", r.expect_error(400, "EOF"));
        let r = s.http.post("/register", a, r#"{"clientID":1}"#).await;
        s.record(
            G_REG,
            "non-string value is a decode error",
            r.expect_error(
                400,
                "json: cannot unmarshal number into Go value of type string",
            ),
        );
        let long_id = "c".repeat(65);
        let r = s
            .http
            .post("/register", a, creds(&long_id, &random_key()))
            .await;
        s.info(
            G_REG,
            "clientID over 64 bytes (implementation-defined)",
            format!("{} {}", r.status, r.body.trim_end()),
        );
        let r = s
            .http
            .post("/register", a, creds(&random_client(), &"k".repeat(73)))
            .await;
        s.info(
            G_REG,
            "authKey over 72 bytes (implementation-defined)",
            format!("{} {}", r.status, r.body.trim_end()),
        );
    }
    if !s.self_registration {
        let r = s
            .http
            .post("/register", None, creds(&random_client(), &random_key()))
            .await;
        s.record(
            G_REG,
            "registration without credentials is 401",
            r.expect_error(401, "authentication failed: invalid auth header"),
        );
    }
    if let Some((id, _)) = s.client.clone() {
        let r = s.http.post("/login", None, creds(&id, &random_key())).await;
        s.record(
            G_REG,
            "login with a wrong key",
            r.expect_error(400, "login failed: authentication failed"),
        );
    }
    let r = s
        .http
        .post("/login", None, creds(&random_client(), &random_key()))
        .await;
    s.record(
        G_REG,
        "login of an unknown client",
        r.expect_error(400, "login failed: authentication failed: error: not found"),
    );

    let unregister_enabled = s.opts.admin_secret.is_some() || s.self_registration;
    if !unregister_enabled {
        let r = s
            .http
            .post(
                "/unregister",
                s.client_auth().as_deref(),
                json!({"clientID": "x"}).to_string(),
            )
            .await;
        s.record(
            G_REG,
            "unregister not enabled",
            r.expect_error(403, "unregister not enabled"),
        );
        return;
    }
    // A throwaway client registers, logs in, then unregisters itself.
    let id = random_client();
    let key = random_key();
    let r = s
        .http
        .post("/register", reg_auth.as_deref(), creds(&id, &key))
        .await;
    if r.status != 201 {
        s.record(
            G_REG,
            "unregister cases",
            Err(format!(
                "could not register a throwaway client: {} {}",
                r.status, r.body
            )),
        );
        return;
    }
    let own = Authorization::basic(&id, &key).to_header_value();
    let login = s.http.post("/login", None, creds(&id, &key)).await;
    let bearer = Authorization::Bearer(token(&login)).to_header_value();
    let r = s
        .http
        .post(
            "/unregister",
            Some(&own),
            json!({"clientID": random_client()}).to_string(),
        )
        .await;
    s.record(
        G_REG,
        "unregister another client as a non-admin",
        r.expect_error(403, "client id not valid"),
    );
    let r = s
        .http
        .post(
            "/unregister",
            Some(&own),
            json!({"clientID": ""}).to_string(),
        )
        .await;
    s.record(
        G_REG,
        "unregister with an empty clientID",
        r.expect_error(400, "client id should not be empty"),
    );
    let r = s
        .http
        .post(
            "/unregister",
            Some(&own),
            json!({"clientID": id}).to_string(),
        )
        .await;
    s.record(
        G_REG,
        "unregister self is 200 with an empty body",
        r.expect(200, ""),
    );
    let r = s.http.get("/jobs/zzzzzzzzzzzz", Some(&bearer)).await;
    s.record(
        G_AUTH,
        "unregister invalidates the bearer token",
        r.expect_error(401, "authentication failed: token is invalid"),
    );
    match admin {
        Some(a) => {
            let r = s
                .http
                .post(
                    "/unregister",
                    Some(&a),
                    json!({"clientID": random_client()}).to_string(),
                )
                .await;
            s.record(
                G_REG,
                "admin unregisters an unknown client",
                r.expect_error(400, "unregister failed: error: not found"),
            );
        }
        None => s.skip(
            G_REG,
            "admin unregisters an unknown client",
            "no --admin-secret",
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plugin_gate() {
        for ok in [
            "", "master", "dev-x", "v0.9.0", "v0.9.5", "v1.0.0", "0.10.1",
        ] {
            assert!(super::plugin_accepts(ok), "{ok}");
        }
        for bad in ["v0.8.9", "latest", "v0.9"] {
            assert!(!super::plugin_accepts(bad), "{bad}");
        }
    }
}
