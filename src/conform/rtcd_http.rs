//! The HTTP phase of the rtcd suite: the open routes (`/version`, `/system`, `/metrics`), the
//! sessions routes under every kind of credentials (rtcd.md §1.2–1.4, §5), and the order of the
//! whole HTTP phase including the auth family, which lives in [`super::rtcd_auth`].

use std::time::{Duration, Instant};

use callsref::proto::auth::Authorization;
use callsref::proto::rtcd::http::text;

use super::rtcd::{Ctx, fresh_id, http};
use super::rtcd_check::{self as check, SystemLoad};
use super::rtcd_client::Target;
use super::rtcd_metrics::{Kind, PROCESS_FAMILIES, RTCD_FAMILIES, Scrape};

const ROUTES: &str = "rtcd.md §1.2";
const BODIES: &str = "rtcd.md §1.4";
const METRICS: &str = "rtcd.md §5";

/// Header values that no target can accept, shared by the HTTP and WS auth matrices.
pub(crate) mod bad_auth {
    /// Not base64, so not usable Basic.
    pub const MALFORMED: &str = "Basic !!!not-base64!!!";
    /// A token that no login returned.
    pub const UNKNOWN_TOKEN: &str = "Bearer conformance-token-that-was-never-issued";
}

/// Basic credentials of a client that was never registered.
pub(crate) fn unknown_client() -> String {
    Authorization::basic(fresh_id(), "k".repeat(40)).to_header_value()
}

/// Basic with an empty client id and a password that is not the admin secret.
pub(crate) fn empty_client_wrong_secret() -> String {
    Authorization::admin(format!("not-the-secret-{}", fresh_id())).to_header_value()
}

/// Runs the HTTP phase.
pub(crate) async fn run(ctx: &mut Ctx) {
    version(ctx).await;
    system(ctx).await;
    metrics(ctx).await;
    super::rtcd_auth::run(ctx).await;
    sessions(ctx).await;
}

async fn version(ctx: &mut Ctx) {
    let reply = http(ctx.target.get("/version", None).await);
    match reply.and_then(|r| check::version(&r)) {
        Ok(info) => {
            ctx.facts.build_version = Some(info.build_version.clone());
            ctx.record(
                "http.version.get",
                BODIES,
                Ok(format!(
                    "200 with the six camelCase keys, buildVersion {:?}",
                    info.build_version
                )),
            );
            ctx.record(
                "http.version.semver",
                "rtcd.md §8.2",
                check::build_version(&info.build_version),
            );
        }
        Err(e) => {
            ctx.record("http.version.get", BODIES, Err(e));
            ctx.skip(
                "http.version.semver",
                "rtcd.md §8.2",
                "skipped (no version body)",
            );
        }
    }
    let reply = http(ctx.target.post("/version", None, Vec::new()).await);
    ctx.record(
        "http.version.wrong_method",
        ROUTES,
        reply.and_then(|r| check::not_found_page(&r)),
    );
}

/// rtcd samples the load once a second and cannot encode `+Inf` (a second without idle CPU): it
/// then answers 200 with an empty body. A few seconds of retries separate that quirk from a target
/// that never sends a body.
async fn system(ctx: &mut Ctx) {
    const ID: &str = "http.system.get";
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut empty_bodies = 0;
    let result = loop {
        let checked = http(ctx.target.get("/system", None).await).and_then(|r| check::system(&r));
        match checked {
            Ok(SystemLoad::EmptyBody) if Instant::now() < deadline => {
                empty_bodies += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(SystemLoad::EmptyBody) => break Ok(None),
            Ok(SystemLoad::Finite(load)) => break Ok(Some(load)),
            Err(e) => break Err(e),
        }
    };
    match result {
        Ok(Some(load)) => ctx.record(ID, BODIES, Ok(format!("200 {{\"cpu_load\": {load}}}, finite"))),
        Ok(None) => ctx.info(
            ID,
            BODIES,
            format!(
                "200 with an empty body on all {} tries for 3 s: rtcd's quirk when the host had no idle \
                 CPU in the last second (cpu_load = +Inf cannot be encoded); rerun on a less loaded host \
                 to check the value",
                empty_bodies + 1
            ),
        ),
        Err(e) => ctx.record(ID, BODIES, Err(e)),
    }
    let reply = http(ctx.target.post("/system", None, Vec::new()).await);
    ctx.record(
        "http.system.wrong_method",
        ROUTES,
        reply.and_then(|r| check::not_found_page(&r)),
    );
}

/// Scrapes `/metrics` and parses it.
pub(crate) async fn scrape(target: &Target) -> Result<Scrape, String> {
    let reply = http(target.get("/metrics", None).await)?;
    if reply.status != 200 {
        return Err(format!("/metrics answered {}", reply.status));
    }
    Scrape::parse(&String::from_utf8_lossy(&reply.body)).map_err(|e| e.to_string())
}

async fn metrics(ctx: &mut Ctx) {
    let reply = match http(ctx.target.get("/metrics", None).await) {
        Ok(reply) => reply,
        Err(e) => {
            ctx.record("http.metrics.get", METRICS, Err(e));
            return;
        }
    };
    let parsed = Scrape::parse(&String::from_utf8_lossy(&reply.body));
    let scrape = match (
        reply.status,
        reply.content_type.starts_with("text/plain"),
        parsed,
    ) {
        (200, true, Ok(scrape)) => {
            ctx.record(
                "http.metrics.get",
                METRICS,
                Ok(format!(
                    "200 {}, {} families",
                    reply.content_type,
                    scrape.families().len()
                )),
            );
            scrape
        }
        (status, _, parsed) => {
            let why = parsed.err().map(|e| e.to_string()).unwrap_or_default();
            ctx.record(
                "http.metrics.get",
                METRICS,
                Err(format!(
                    "expected 200 text/plain exposition, got {status} {:?} {why}",
                    reply.content_type
                )),
            );
            return;
        }
    };

    let missing: Vec<String> = PROCESS_FAMILIES
        .iter()
        .filter_map(|(name, kind)| match scrape.kinds.get(*name) {
            Some(Some(k)) if k == kind => None,
            Some(other) => Some(format!(
                "{name} (declared {:?}, expected {})",
                other.map(Kind::as_str),
                kind.as_str()
            )),
            None => Some(format!("{name} (absent)")),
        })
        .collect();
    ctx.record(
        "http.metrics.process_families",
        METRICS,
        if missing.is_empty() {
            Ok(format!(
                "all {} rtcd_process_* families present without traffic",
                PROCESS_FAMILIES.len()
            ))
        } else {
            Err(format!("missing or mistyped: {}", missing.join(", ")))
        },
    );

    // The labelled families appear only once a label set has been used; whichever are already
    // present must carry the kind and labels of §5.
    let mut present = Vec::new();
    let mut wrong = Vec::new();
    for (name, kind, labels) in RTCD_FAMILIES {
        if !scrape.has_family(name) {
            continue;
        }
        present.push(*name);
        if let Some(declared) = scrape.kinds.get(*name)
            && *declared != Some(*kind)
        {
            wrong.push(format!(
                "{name} declared {:?}, expected {}",
                declared.map(Kind::as_str),
                kind.as_str()
            ));
        }
        for sample in scrape.samples.iter().filter(|s| s.name.starts_with(name)) {
            let extra: Vec<&String> = sample
                .labels
                .keys()
                .filter(|k| !labels.contains(&k.as_str()) && k.as_str() != "le")
                .collect();
            if !extra.is_empty() {
                wrong.push(format!(
                    "{} has labels {extra:?} outside {labels:?}",
                    sample.name
                ));
                break;
            }
        }
    }
    ctx.record(
        "http.metrics.rtcd_families",
        METRICS,
        if wrong.is_empty() {
            Ok(format!(
                "labelled families present before traffic: {present:?}; kinds and labels as in §5"
            ))
        } else {
            Err(wrong.join("; "))
        },
    );

    let known: Vec<&str> = RTCD_FAMILIES
        .iter()
        .map(|(n, _, _)| *n)
        .chain(PROCESS_FAMILIES.iter().map(|(n, _)| *n))
        .collect();
    let unknown: Vec<String> = scrape
        .families()
        .into_iter()
        .filter(|n| n.starts_with("rtcd_") && !known.contains(&n.as_str()))
        .collect();
    if unknown.is_empty() {
        ctx.record(
            "http.metrics.unknown_families",
            METRICS,
            Ok("no rtcd_* family outside §5".into()),
        );
    } else {
        ctx.info(
            "http.metrics.unknown_families",
            METRICS,
            format!("rtcd_* families not in §5: {unknown:?}"),
        );
    }
}

/// `/calls/{callID}/sessions[/{sessionID}]` without a live session: 401 for every credential that
/// is not a real client (admin included), 404 "group not found" for a client without sessions.
async fn sessions(ctx: &mut Ctx) {
    let call = fresh_id();
    let list = format!("/calls/{call}/sessions");
    let one = format!("/calls/{call}/sessions/{}", fresh_id());
    let unauthorized: [(&str, Option<String>); 4] = [
        ("none", None),
        ("unknown_client", Some(unknown_client())),
        ("bad_token", Some(bad_auth::UNKNOWN_TOKEN.to_owned())),
        ("malformed", Some(bad_auth::MALFORMED.to_owned())),
    ];
    for (name, auth) in &unauthorized {
        let reply = http(ctx.target.get(&list, auth.as_deref()).await);
        ctx.record(
            &format!("http.sessions.auth.{name}"),
            BODIES,
            reply.and_then(|r| check::plain_text(&r, 401, text::UNAUTHORIZED)),
        );
    }
    let reply = http(ctx.target.get(&one, None).await);
    ctx.record(
        "http.session.auth.none",
        BODIES,
        reply.and_then(|r| check::plain_text(&r, 401, text::UNAUTHORIZED)),
    );

    match ctx.admin.clone() {
        Some(admin) => {
            let reply = http(ctx.target.get(&list, Some(&admin)).await);
            let result = reply.and_then(|r| check::plain_text(&r, 401, text::UNAUTHORIZED));
            if ctx.facts.admin_accepted == Some(true) {
                ctx.record(
                    "http.sessions.auth.admin",
                    BODIES,
                    result.map(|d| format!("{d} (admin is no client)")),
                );
            } else {
                ctx.skip(
                    "http.sessions.auth.admin",
                    BODIES,
                    "skipped (the admin secret was rejected)",
                );
            }
        }
        None => ctx.skip(
            "http.sessions.auth.admin",
            BODIES,
            "skipped (needs --admin-secret)",
        ),
    }

    let Some(client) = ctx.client.clone() else {
        let reason = ctx.no_client_reason();
        for id in [
            "http.sessions.unknown_group",
            "http.sessions.bearer",
            "http.session.unknown_group",
        ] {
            ctx.skip(id, BODIES, reason);
        }
        return;
    };
    let group_missing = text::session_configs_not_found(text::GROUP_NOT_FOUND);
    let reply = http(ctx.target.get(&list, Some(&client.basic())).await);
    ctx.record(
        "http.sessions.unknown_group",
        BODIES,
        reply.and_then(|r| check::plain_text(&r, 404, &group_missing)),
    );
    match super::rtcd_auth::login(ctx, &client).await {
        Ok(token) => {
            let reply = http(
                ctx.target
                    .get(&list, Some(&format!("Bearer {token}")))
                    .await,
            );
            ctx.record(
                "http.sessions.bearer",
                BODIES,
                reply.and_then(|r| check::plain_text(&r, 404, &group_missing)),
            );
        }
        Err(e) => ctx.record(
            "http.sessions.bearer",
            BODIES,
            Err(format!("login failed: {e}")),
        ),
    }
    let reply = http(ctx.target.get(&one, Some(&client.basic())).await);
    ctx.record(
        "http.session.unknown_group",
        BODIES,
        reply.and_then(|r| {
            check::plain_text(
                &r,
                404,
                &text::session_config_not_found(text::GROUP_NOT_FOUND),
            )
        }),
    );

    let reply = http(
        ctx.target
            .post(&list, Some(&client.basic()), Vec::new())
            .await,
    );
    ctx.record(
        "http.sessions.wrong_method",
        ROUTES,
        reply.and_then(|r| check::not_found_page(&r)),
    );
    let reply = http(
        ctx.target
            .post(&one, Some(&client.basic()), Vec::new())
            .await,
    );
    ctx.record(
        "http.session.wrong_method",
        ROUTES,
        reply.and_then(|r| check::not_found_page(&r)),
    );
}

/// Unregisters the clients the suite registered (best effort; a failure is an informational row,
/// since a target with unregistering disabled keeps them by design).
pub(crate) async fn cleanup(ctx: &mut Ctx) {
    let clients = std::mem::take(&mut ctx.registered);
    let mut kept = Vec::new();
    for client in clients {
        let auth = ctx
            .admin
            .clone()
            .filter(|_| ctx.facts.admin_accepted == Some(true))
            .unwrap_or_else(|| client.basic());
        let body = serde_json::json!({"clientID": client.id}).to_string();
        let done = matches!(http(ctx.target.post("/unregister", Some(&auth), body).await), Ok(r) if r.status == 200);
        if !done {
            kept.push(client.id);
        }
    }
    if !kept.is_empty() {
        ctx.info(
            "cleanup.unregister",
            BODIES,
            format!("could not unregister the suite's clients {kept:?}"),
        );
    }
}
