//! `callsbench conform offloader` against the reference offloader (`callsref offloader`): the
//! suite must pass 100 % on the Docker backend (with the white-box checks) and on the process
//! backend, and none of the real service's known defects may be observed.
//! Docker is required for the Docker case: it fails, with a message, when the engine is unreachable.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use support::{callsref, root};

use callsbench::conform::offloader::{Options, run};
use callsbench::conform::{Outcome, Report};

/// The two cases share the Docker engine's label namespace and the machine: run them one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The machine-wide turn on the Docker engine that callsref's Docker tests also take (the same
/// lock file): an offloader adopts every labelled container on its engine, so two test processes
/// at once would settle and remove each other's jobs. Held with `SERIAL` for the whole case.
fn docker_turn() -> std::fs::File {
    let path = std::env::temp_dir().join("callsbench-docker-tests.lock");
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    file.lock().unwrap();
    file
}

fn require_docker_and_image() {
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        ok.is_ok_and(|s| s.success()),
        "Docker is not reachable (`docker info` failed): start dockerd"
    );
    let present = Command::new("docker")
        .args(["image", "inspect", "callsbench/calls-recorder:v0.8.13"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !present.is_ok_and(|s| s.success()) {
        let status = Command::new(root().join("deploy/runner/build-image.sh"))
            .current_dir(root())
            .status()
            .unwrap();
        assert!(status.success(), "deploy/runner/build-image.sh failed");
    }
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(api_type: &str, self_registration: bool) -> Server {
    let dir = std::env::temp_dir().join(format!(
        "callsbench-conform-{api_type}-{:x}",
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        r#"[api]
http.listen_address = "127.0.0.1:0"
security.allow_self_registration = {self_registration}
security.enable_admin = true
security.admin_secret_key = "conform_admin_secret"
security.session_cache.expiration_minutes = 1440
[store]
data_source = "{}"
[jobs]
api_type = "{api_type}"
max_concurrent_jobs = 2
image_registry = "callsbench"
stop_grace_seconds = 3
[logger]
enable_console = true
console_level = "INFO"
"#,
        dir.join("db").display()
    );
    std::fs::write(dir.join("config.toml"), cfg).unwrap();
    let mut child = Command::new(callsref())
        .args(["offloader", "--config"])
        .arg(dir.join("config.toml"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("offloader.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains("listening on"),
        "offloader did not start: {line:?}"
    );
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    Server {
        child,
        url: format!("http://{addr}"),
    }
}

fn options(url: &str, docker: bool) -> Options {
    Options {
        url: url.to_owned(),
        admin_secret: Some("conform_admin_secret".into()),
        registry: "callsbench".into(),
        docker,
        docker_network: None,
        limit: 2,
        client: None,
        stop_grace: Some(3),
        slow: false,
        retention_minutes: None,
        session_minutes: None,
    }
}

fn assert_clean_pass(report: &Report) {
    let failures: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .collect();
    assert!(failures.is_empty(), "failed cases:\n{}", report.table());
    for c in report
        .cases
        .iter()
        .filter(|c| c.group == "known defects" && c.name != "record after DELETE (Go keeps it)")
    {
        assert!(
            c.detail.starts_with("not observed"),
            "defect observed: {} — {}",
            c.name,
            c.detail
        );
    }
    assert!(
        report.count(Outcome::Pass) >= 70,
        "too few cases ran:\n{}",
        report.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_passes_on_the_docker_backend() {
    let _serial = SERIAL.lock().await;
    let _turn = docker_turn();
    require_docker_and_image();
    let server = spawn("docker", true);
    let report = run(options(&server.url, true)).await;
    eprintln!("{}", report.table());
    assert_clean_pass(&report);
    assert!(
        report
            .case("container spec")
            .is_some_and(|c| c.outcome == Outcome::Pass)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_passes_on_the_process_backend_without_self_registration() {
    let _serial = SERIAL.lock().await;
    let _turn = docker_turn();
    let server = spawn("process", false);
    let report = run(options(&server.url, false)).await;
    eprintln!("{}", report.table());
    assert_clean_pass(&report);
    assert!(
        report
            .case("registration without credentials is 401")
            .is_some_and(|c| c.outcome == Outcome::Pass)
    );
}
