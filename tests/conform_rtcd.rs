//! `callsbench conform rtcd` at the process edge: usage errors and an unreachable target exit 2
//! (not 1, which means the target failed cases), with a message naming the problem.

use std::process::{Command, Output};

fn callsbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callsbench"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn usage_errors_exit_2() {
    for (args, expect) in [
        (&["conform", "rtcd"][..], "--url"),
        (
            &["conform", "rtcd", "--url", "https://127.0.0.1:1"][..],
            "no TLS",
        ),
        (
            &["conform", "rtcd", "--url", "ftp://127.0.0.1:1"][..],
            "unsupported scheme",
        ),
        (&["conform", "rtcd", "--url", "not a url"][..], "not a URL"),
        (&["conform", "nosuchservice"][..], "nosuchservice"),
    ] {
        let output = callsbench(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

#[test]
fn unreachable_target_exits_2() {
    // A port that was just free: nothing listens there once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let output = callsbench(&["conform", "rtcd", "--url", &url, "--quick"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot reach the target"), "{stderr}");
    assert!(output.stdout.is_empty());
}
