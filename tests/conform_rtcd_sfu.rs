//! The rtcd suite against the reference SFU, `callsref sfu`, as a child process on ephemeral ports
//! (it announces them in its `--ready-file` as `{"http":"ADDR","udp":PORT}`).
//!
//! Ignored until `callsref sfu` is on main: the `callsref` binary on this branch has no `sfu`
//! subcommand yet. Run by hand on the SFU's branch from `/tmp` (2026-11-22, sfu@796654e), the full
//! suite gave 83 pass, 3 fail: `ws.malformed.oversize` (the SFU drops a > 1 MiB frame's connection
//! without rtcd's 1009 close frame), `ws.ping.no_pong_closed` (it keeps a connection that answers no
//! pings) and `ws.no_offer.metrics` (no `rtcd_rtc_errors_total{type="signaling"}` on the no-offer
//! close). Remove the `ignore` once the SFU is merged; the test then holds it to zero failures.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callsbench::conform::rtcd::{SuiteConfig, run_suite};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs `callsref sfu` (branch sfu) merged into main"]
async fn reference_sfu_passes_the_rtcd_suite() {
    for self_registration in [false, true] {
        let sfu = start(self_registration);
        let report = run_suite(SuiteConfig {
            url: format!("http://{}", sfu.http).parse().unwrap(),
            admin_secret: Some(ADMIN_SECRET.into()),
            quick: true,
        })
        .await
        .unwrap();
        assert_eq!(report.facts.self_registration, Some(self_registration));
        assert_eq!(report.facts.admin_accepted, Some(true));
        assert_eq!(report.summary.fail, 0, "{}", report.render_table());
        assert!(report.summary.pass > 60, "{}", report.render_table());
    }
}
