//! The rtcd suite against the reference SFU, `callsref sfu`, as a child process on ephemeral ports
//! (it announces them in its `--ready-file` as `{"http":"ADDR","udp":PORT}`).
//!
//! Two tests: the quick suite under both registration modes, and the slow WebSocket cases (server
//! pings, a connection that answers none dropped at 20 s, the 10 s no-offer close and its metrics)
//! in a test of their own. rtcd's timers are fixed (no config key shortens them), so the slow one
//! takes about 30 s; it runs beside the others rather than after them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callsbench::conform::rtcd::{Outcome, SuiteConfig, run_suite};

const ADMIN_SECRET: &str = "conform-admin-secret-0123456789";

/// The `callsref` binary built beside this test (`cargo test --workspace` builds it).
fn callsref_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("callsref");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p callsref` first",
        bin.display()
    );
    bin
}

struct Sfu {
    child: Child,
    http: String,
    dir: PathBuf,
}

impl Drop for Sfu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(self_registration: bool) -> Sfu {
    let dir = std::env::temp_dir().join(format!(
        "conform-rtcd-sfu-{}-{self_registration}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[api.http]\nlisten_address = \"127.0.0.1:0\"\n\
             [api.security]\nallow_self_registration = {self_registration}\nenable_admin = true\n\
             admin_secret_key = \"{ADMIN_SECRET}\"\n\
             [rtc]\nice_address_udp = \"127.0.0.1\"\nice_port_udp = 0\n\
             ice_address_tcp = \"127.0.0.1\"\nice_port_tcp = 0\n\
             [store]\ndata_source = \"{}\"\n",
            dir.join("db").display()
        ),
    )
    .unwrap();
    let ready = dir.join("ready.json");
    let child = Command::new(callsref_bin())
        .args(["sfu", "--config"])
        .arg(&config)
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sfu = Sfu {
        child,
        http: String::new(),
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        if let Ok(text) = std::fs::read_to_string(&ready)
            && text.ends_with('\n')
        {
            break text;
        }
        assert!(
            sfu.child.try_wait().unwrap().is_none(),
            "callsref sfu exited before it was ready"
        );
        assert!(
            Instant::now() < deadline,
            "callsref sfu did not announce its ports within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let announced: serde_json::Value = serde_json::from_str(&text).unwrap();
    sfu.http = announced["http"].as_str().unwrap().to_owned();
    sfu
}

async fn suite(self_registration: bool, quick: bool) {
    let sfu = start(self_registration);
    let report = run_suite(SuiteConfig {
        url: format!("http://{}", sfu.http).parse().unwrap(),
        admin_secret: Some(ADMIN_SECRET.into()),
        quick,
        ice_tcp: true,
    })
    .await
    .unwrap();
    assert_eq!(report.facts.self_registration, Some(self_registration));
    assert_eq!(report.facts.admin_accepted, Some(true));
    assert_eq!(report.summary.fail, 0, "{}", report.render_table());
    assert!(report.summary.pass > 60, "{}", report.render_table());
    // The reference SFU listens for ICE-TCP and offers it.
    let case = report
        .cases
        .iter()
        .find(|c| c.id == "rtc.ice_tcp.candidate");
    assert!(
        case.is_some_and(|c| c.outcome == Outcome::Pass && c.detail.contains("tcptype passive")),
        "{case:?}"
    );
    if !quick {
        // The slow cases ran and passed (none skipped).
        for id in [
            "ws.ping.first",
            "ws.ping.survives",
            "ws.ping.no_pong_closed",
            "ws.no_offer.close",
            "ws.no_offer.metrics",
            "ws.no_offer.session_gone",
            "ws.join.metrics",
            "ws.malformed.oversize",
        ] {
            let case = report.cases.iter().find(|c| c.id == id);
            assert!(
                case.is_some_and(|c| c.outcome == Outcome::Pass),
                "{id}: {case:?}\n{}",
                report.render_table()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_sfu_passes_the_quick_rtcd_suite() {
    suite(false, true).await;
    suite(true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_sfu_passes_the_full_rtcd_suite_with_its_slow_ws_cases() {
    suite(true, false).await;
}
