//! The auth family of the rtcd suite: `/register`, `/login` and `/unregister` under every kind of
//! credentials, with the exact JSON envelope and error texts (rtcd.md §1.3–1.4).
//!
//! The first request finds out whether self-registration is on (an unauthenticated register
//! succeeds) and the second whether the given admin secret is accepted; the rest of the cases follow
//! from those two facts, and the ones neither allows are skipped.

use callsref::proto::rtcd::http::errors;

use super::rtcd::{Client, Ctx, fresh_id, http};
use super::rtcd_check as check;
use super::rtcd_http::{bad_auth, empty_client_wrong_secret, unknown_client};

const AUTH: &str = "rtcd.md §1.3";
const BODIES: &str = "rtcd.md §1.4";

pub(crate) async fn run(ctx: &mut Ctx) {
    discover(ctx).await;
    register(ctx).await;
    login_cases(ctx).await;
    unregister(ctx).await;
}

/// Logs `client` in and returns its bearer token.
pub(crate) async fn login(ctx: &Ctx, client: &Client) -> Result<String, String> {
    let reply = http(
        ctx.target
            .post("/login", None, client.credentials_body())
            .await,
    )?;
    let object = check::auth_success(&reply, 200, &[("bearerToken", None)])?;
    Ok(object["bearerToken"].clone())
}

/// Self-registration and the admin secret, and the suite's main client.
async fn discover(ctx: &mut Ctx) {
    let first = Client::fresh();
    let reply = http(
        ctx.target
            .post("/register", None, first.credentials_body())
            .await,
    );
    let result = reply.and_then(|r| {
        if r.status == 201 {
            check::auth_success(&r, 201, &[("clientID", Some(&first.id))]).map(|_| true)
        } else {
            check::auth_error(&r, 401, Some(errors::AUTH_INVALID_HEADER)).map(|_| false)
        }
    });
    match result {
        Ok(on) => {
            ctx.facts.self_registration = Some(on);
            let detail = if on {
                "on: 201 {\"clientID\",\"code\":\"201\"} without credentials"
            } else {
                "off: 401 {\"code\":\"401\",\"error\":\"authentication failed: invalid auth header\"}"
            };
            ctx.record("http.register.self_registration", BODIES, Ok(detail.into()));
            if on {
                ctx.registered.push(first.clone());
                ctx.client = Some(first);
            }
        }
        Err(e) => ctx.record("http.register.self_registration", BODIES, Err(e)),
    }

    let Some(admin) = ctx.admin.clone() else {
        ctx.skip(
            "http.register.admin",
            AUTH,
            "skipped (needs --admin-secret)",
        );
        return;
    };
    let client = Client::fresh();
    let reply = http(
        ctx.target
            .post("/register", Some(&admin), client.credentials_body())
            .await,
    );
    let result =
        reply.and_then(|r| check::auth_success(&r, 201, &[("clientID", Some(&client.id))]));
    ctx.facts.admin_accepted = Some(result.is_ok());
    if result.is_ok() {
        ctx.registered.push(client.clone());
        ctx.client.get_or_insert(client);
    }
    ctx.record(
        "http.register.admin",
        AUTH,
        result
            .map(|_| "201 with the admin secret as the Basic password".into())
            .map_err(|e| {
                format!(
                    "{e} (the admin secret was rejected: is enable_admin on and the secret right?)"
                )
            }),
    );
}

async fn register(ctx: &mut Ctx) {
    let reply = http(ctx.target.get("/register", None).await);
    ctx.record(
        "http.register.wrong_method",
        "rtcd.md §1.2",
        reply.and_then(|r| check::not_found_page(&r)),
    );

    let selfreg = ctx.facts.self_registration;
    // Credentials for the body cases: none with self-registration, else any authenticated caller.
    let auth = match (selfreg, &ctx.client) {
        (Some(true), _) => None,
        (_, Some(client)) => Some(client.basic()),
        _ => {
            let reason = ctx.no_client_reason();
            for id in [
                "http.register.auth.client_basic",
                "http.register.auth.client_bearer",
                "http.register.short_key",
                "http.register.duplicate",
                "http.register.empty_client_id",
                "http.register.empty_body",
                "http.register.bad_json",
                "http.register.non_string_value",
            ] {
                ctx.skip(id, BODIES, reason);
            }
            if selfreg == Some(false) {
                register_auth_failures(ctx).await;
            }
            return;
        }
    };

    if selfreg == Some(true) {
        // With self-registration on, rtcd never looks at the Authorization header of /register.
        let client = Client::fresh();
        let reply = http(
            ctx.target
                .post(
                    "/register",
                    Some(&unknown_client()),
                    client.credentials_body(),
                )
                .await,
        );
        let result =
            reply.and_then(|r| check::auth_success(&r, 201, &[("clientID", Some(&client.id))]));
        if result.is_ok() {
            ctx.registered.push(client);
        }
        ctx.record(
            "http.register.auth_ignored",
            AUTH,
            result.map(|_| "201 despite unknown Basic credentials (self-registration on)".into()),
        );
        for name in REGISTER_AUTH_CASES
            .iter()
            .chain(&["client_basic", "client_bearer"])
        {
            ctx.skip(
                &format!("http.register.auth.{name}"),
                AUTH,
                "skipped (self-registration is on: /register does not authenticate)",
            );
        }
    } else {
        ctx.skip(
            "http.register.auth_ignored",
            AUTH,
            "skipped (self-registration is off)",
        );
        register_auth_failures(ctx).await;
        let main = ctx
            .client
            .clone()
            .expect("checked above: a client exists when self-registration is off");
        let client = Client::fresh();
        let reply = http(
            ctx.target
                .post("/register", Some(&main.basic()), client.credentials_body())
                .await,
        );
        let result =
            reply.and_then(|r| check::auth_success(&r, 201, &[("clientID", Some(&client.id))]));
        if result.is_ok() {
            ctx.registered.push(client);
        }
        ctx.record(
            "http.register.auth.client_basic",
            AUTH,
            result.map(|_| "201 (a client may register others)".into()),
        );
        let result = match login(ctx, &main).await {
            Ok(token) => {
                let client = Client::fresh();
                let reply = http(
                    ctx.target
                        .post(
                            "/register",
                            Some(&format!("Bearer {token}")),
                            client.credentials_body(),
                        )
                        .await,
                );
                let result = reply
                    .and_then(|r| check::auth_success(&r, 201, &[("clientID", Some(&client.id))]));
                if result.is_ok() {
                    ctx.registered.push(client);
                }
                result.map(|_| "201 with a bearer token from /login".into())
            }
            Err(e) => Err(format!("login failed: {e}")),
        };
        ctx.record("http.register.auth.client_bearer", AUTH, result);
    }

    let auth = auth.as_deref();
    let short = serde_json::json!({"clientID": fresh_id(), "authKey": "k".repeat(31)}).to_string();
    let reply = http(ctx.target.post("/register", auth, short).await);
    ctx.record(
        "http.register.short_key",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, Some(errors::REGISTER_KEY_TOO_SHORT))),
    );
    let duplicate = ctx.client.clone().expect("a client exists on this path");
    let reply = http(
        ctx.target
            .post("/register", auth, duplicate.credentials_body())
            .await,
    );
    ctx.record(
        "http.register.duplicate",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, Some(errors::REGISTER_ALREADY_REGISTERED))),
    );
    let empty_id = serde_json::json!({"clientID": "", "authKey": "k".repeat(40)}).to_string();
    let reply = http(ctx.target.post("/register", auth, empty_id).await);
    ctx.record(
        "http.register.empty_client_id",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, Some(errors::REGISTER_EMPTY_ID))),
    );
    let reply = http(ctx.target.post("/register", auth, Vec::new()).await);
    ctx.record(
        "http.register.empty_body",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, Some(errors::EMPTY_BODY))),
    );
    // Go's JSON decoder texts are not part of the contract: any non-empty error passes.
    let reply = http(ctx.target.post("/register", auth, "{not json").await);
    ctx.record(
        "http.register.bad_json",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, None)),
    );
    let reply = http(
        ctx.target
            .post("/register", auth, "{\"clientID\":5,\"authKey\":\"x\"}")
            .await,
    );
    ctx.record(
        "http.register.non_string_value",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, None)),
    );
}

/// The credential cases of [`register_auth_failures`].
const REGISTER_AUTH_CASES: [&str; 5] = [
    "malformed",
    "bearer_lowercase",
    "unknown_client",
    "empty_client_id",
    "bad_token",
];

/// With self-registration off, `/register` authenticates first: each unusable credential gets its
/// own 401 text.
async fn register_auth_failures(ctx: &mut Ctx) {
    let body = Client::fresh().credentials_body();
    let lowercase_bearer = "bearer conformance-token".to_owned();
    let cases: [(&str, String, &str); 5] = [
        (
            "malformed",
            bad_auth::MALFORMED.to_owned(),
            errors::AUTH_INVALID_HEADER,
        ),
        (
            "bearer_lowercase",
            lowercase_bearer,
            errors::AUTH_INVALID_HEADER,
        ),
        ("unknown_client", unknown_client(), errors::AUTH_FAILED),
        (
            "empty_client_id",
            empty_client_wrong_secret(),
            errors::AUTH_UNAUTHORIZED,
        ),
        (
            "bad_token",
            bad_auth::UNKNOWN_TOKEN.to_owned(),
            errors::AUTH_TOKEN_INVALID,
        ),
    ];
    for (name, auth, error) in cases {
        let reply = http(
            ctx.target
                .post("/register", Some(&auth), body.clone())
                .await,
        );
        ctx.record(
            &format!("http.register.auth.{name}"),
            AUTH,
            reply.and_then(|r| check::auth_error(&r, 401, Some(error))),
        );
    }
}

async fn login_cases(ctx: &mut Ctx) {
    let reply = http(ctx.target.get("/login", None).await);
    ctx.record(
        "http.login.wrong_method",
        "rtcd.md §1.2",
        reply.and_then(|r| check::not_found_page(&r)),
    );
    let unknown =
        serde_json::json!({"clientID": fresh_id(), "authKey": "k".repeat(40)}).to_string();
    let reply = http(ctx.target.post("/login", None, unknown).await);
    ctx.record(
        "http.login.unknown_client",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, Some(errors::LOGIN_UNKNOWN_CLIENT))),
    );
    let empty_id = serde_json::json!({"clientID": "", "authKey": "k".repeat(40)}).to_string();
    let reply = http(ctx.target.post("/login", None, empty_id).await);
    ctx.record(
        "http.login.empty_client_id",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, Some(errors::LOGIN_EMPTY_ID))),
    );
    let reply = http(ctx.target.post("/login", None, Vec::new()).await);
    ctx.record(
        "http.login.empty_body",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, Some(errors::EMPTY_BODY))),
    );

    let Some(client) = ctx.client.clone() else {
        let reason = ctx.no_client_reason();
        for id in [
            "http.login.ok",
            "http.login.wrong_key",
            "http.login.relogin_invalidates",
        ] {
            ctx.skip(id, BODIES, reason);
        }
        return;
    };
    let wrong = serde_json::json!({"clientID": client.id, "authKey": "w".repeat(40)}).to_string();
    let reply = http(ctx.target.post("/login", None, wrong).await);
    ctx.record(
        "http.login.wrong_key",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, Some(errors::LOGIN_BAD_KEY))),
    );

    let first = login(ctx, &client).await;
    ctx.record(
        "http.login.ok",
        BODIES,
        first.clone().and_then(|token| {
            if token.len() == 32
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                Ok("200 {\"bearerToken\": <32 base64url chars>, \"code\": \"200\"}".into())
            } else {
                Err(format!(
                    "bearerToken {token:?} is not 32 base64url characters"
                ))
            }
        }),
    );
    // A second login drops the first token; /unregister authenticates before reading the body, so
    // a stale token is refused there without side effects.
    let result = match (first, login(ctx, &client).await) {
        (Ok(old), Ok(_new)) => {
            let body = serde_json::json!({"clientID": client.id}).to_string();
            let reply = http(
                ctx.target
                    .post("/unregister", Some(&format!("Bearer {old}")), body)
                    .await,
            );
            reply.and_then(|r| check::auth_error(&r, 401, Some(errors::AUTH_TOKEN_INVALID)))
        }
        (Err(e), _) | (_, Err(e)) => Err(format!("login failed: {e}")),
    };
    ctx.record("http.login.relogin_invalidates", AUTH, result);
}

async fn unregister(ctx: &mut Ctx) {
    let reply = http(ctx.target.get("/unregister", None).await);
    ctx.record(
        "http.unregister.wrong_method",
        "rtcd.md §1.2",
        reply.and_then(|r| check::not_found_page(&r)),
    );

    // Enabled when admin or self-registration is on: then it authenticates (401 without
    // credentials); disabled, it refuses everyone with 403 before looking at credentials.
    let body = serde_json::json!({"clientID": fresh_id()}).to_string();
    let known_enabled =
        ctx.facts.self_registration == Some(true) || ctx.facts.admin_accepted == Some(true);
    let reply = http(ctx.target.post("/unregister", None, body.clone()).await);
    let result = reply.and_then(|r| {
        if r.status == 403 && !known_enabled {
            check::auth_error(&r, 403, Some(errors::UNREGISTER_NOT_ENABLED)).map(|d| (d, false))
        } else {
            check::auth_error(&r, 401, Some(errors::AUTH_INVALID_HEADER)).map(|d| (d, true))
        }
    });
    let enabled = result.as_ref().ok().map(|(_, enabled)| *enabled);
    ctx.unregister_enabled = enabled;
    ctx.record(
        "http.unregister.enabled",
        BODIES,
        result.map(|(d, on)| format!("{} ({d})", if on { "enabled" } else { "disabled" })),
    );
    const ENABLED_CASES: [&str; 8] = [
        "http.unregister.auth.unknown_client",
        "http.unregister.auth.empty_client_id",
        "http.unregister.auth.bad_token",
        "http.unregister.empty_client_id",
        "http.unregister.other_client",
        "http.unregister.self",
        "http.unregister.unknown_client",
        "http.unregister.admin",
    ];
    if enabled != Some(true) {
        for id in ENABLED_CASES {
            ctx.skip(
                id,
                BODIES,
                "skipped (unregistering is disabled on the target)",
            );
        }
        return;
    }
    for (name, auth, error) in [
        ("unknown_client", unknown_client(), errors::AUTH_FAILED),
        (
            "empty_client_id",
            empty_client_wrong_secret(),
            errors::AUTH_UNAUTHORIZED,
        ),
        (
            "bad_token",
            bad_auth::UNKNOWN_TOKEN.to_owned(),
            errors::AUTH_TOKEN_INVALID,
        ),
    ] {
        let reply = http(
            ctx.target
                .post("/unregister", Some(&auth), body.clone())
                .await,
        );
        ctx.record(
            &format!("http.unregister.auth.{name}"),
            AUTH,
            reply.and_then(|r| check::auth_error(&r, 401, Some(error))),
        );
    }

    let Some(main) = ctx.client.clone() else {
        for id in &ENABLED_CASES[3..] {
            ctx.skip(id, BODIES, ctx.no_client_reason());
        }
        return;
    };
    let reply = http(
        ctx.target
            .post("/unregister", Some(&main.basic()), "{\"clientID\":\"\"}")
            .await,
    );
    ctx.record(
        "http.unregister.empty_client_id",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, Some(errors::UNREGISTER_EMPTY_ID))),
    );

    match ctx.register_extra().await {
        Ok(other) => {
            let body = serde_json::json!({"clientID": other.id}).to_string();
            let reply = http(
                ctx.target
                    .post("/unregister", Some(&main.basic()), body.clone())
                    .await,
            );
            ctx.record(
                "http.unregister.other_client",
                BODIES,
                reply.and_then(|r| {
                    check::auth_error(&r, 403, Some(errors::UNREGISTER_OTHER_CLIENT))
                }),
            );
            let token = login(ctx, &other).await;
            let reply = http(
                ctx.target
                    .post("/unregister", Some(&other.basic()), body)
                    .await,
            );
            let mut result = reply
                .and_then(|r| check::auth_success(&r, 200, &[]))
                .map(|_| "200 {\"code\":\"200\"}".to_owned());
            if result.is_ok() {
                ctx.registered.retain(|c| c.id != other.id);
                // Unregistering drops the stored key and the bearer token.
                result = after_unregister(ctx, &other, token).await;
            }
            ctx.record("http.unregister.self", BODIES, result);
        }
        Err(e) => {
            for id in ["http.unregister.other_client", "http.unregister.self"] {
                ctx.record(
                    id,
                    BODIES,
                    Err(format!("could not register a second client: {e}")),
                );
            }
        }
    }

    let Some(admin) = ctx
        .admin
        .clone()
        .filter(|_| ctx.facts.admin_accepted == Some(true))
    else {
        for id in ["http.unregister.unknown_client", "http.unregister.admin"] {
            ctx.skip(id, BODIES, "skipped (needs --admin-secret)");
        }
        return;
    };
    let reply = http(ctx.target.post("/unregister", Some(&admin), body).await);
    ctx.record(
        "http.unregister.unknown_client",
        BODIES,
        reply.and_then(|r| check::auth_error(&r, 400, Some(errors::UNREGISTER_NOT_FOUND))),
    );
    let result = match ctx.register_extra().await {
        Ok(victim) => {
            let body = serde_json::json!({"clientID": victim.id}).to_string();
            let reply = http(ctx.target.post("/unregister", Some(&admin), body).await);
            let result = reply
                .and_then(|r| check::auth_success(&r, 200, &[]))
                .map(|_| "200 {\"code\":\"200\"}".into());
            if result.is_ok() {
                ctx.registered.retain(|c| c.id != victim.id);
            }
            result
        }
        Err(e) => Err(format!("could not register a client to remove: {e}")),
    };
    ctx.record("http.unregister.admin", BODIES, result);
}

/// After a client unregistered itself: its Basic credentials and its token no longer work.
async fn after_unregister(
    ctx: &Ctx,
    gone: &Client,
    token: Result<String, String>,
) -> Result<String, String> {
    let sessions = format!("/calls/{}/sessions", fresh_id());
    let reply = http(ctx.target.get(&sessions, Some(&gone.basic())).await)?;
    check::plain_text(&reply, 401, callsref::proto::rtcd::http::text::UNAUTHORIZED)
        .map_err(|e| format!("basic credentials still work after unregistering: {e}"))?;
    let token = token.map_err(|e| format!("login before unregistering failed: {e}"))?;
    let body = serde_json::json!({"clientID": gone.id}).to_string();
    let reply = http(
        ctx.target
            .post("/unregister", Some(&format!("Bearer {token}")), body)
            .await,
    )?;
    check::auth_error(&reply, 401, Some(errors::AUTH_TOKEN_INVALID))
        .map_err(|e| format!("the token still works after unregistering: {e}"))?;
    Ok("200 {\"code\":\"200\"}; afterwards its Basic credentials get 401 and its token \"token is invalid\"".into())
}
