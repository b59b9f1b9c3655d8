//! The seccomp profile job containers run under (offloader.md §4.3): default action
//! `SCMP_ACT_ERRNO` and an allowlist of 326 syscalls, passed to Docker as `seccomp=<compact JSON>`.
//!
//! The syscall names are data (`seccomp_syscalls.txt`, one per line, the same set calls-offloader
//! v0.9.5 allows); the JSON is built here.

use serde_json::json;

const SYSCALLS: &str = include_str!("seccomp_syscalls.txt");

/// The allowed syscall names, in file order.
pub fn allowed_syscalls() -> impl Iterator<Item = &'static str> {
    SYSCALLS.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// The profile as compact JSON: no `architectures` key, `"args": null` on every rule.
pub fn profile_json() -> String {
    let rules: Vec<_> = allowed_syscalls()
        .map(|name| json!({"name": name, "action": "SCMP_ACT_ALLOW", "args": null}))
        .collect();
    json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}).to_string()
}

/// The Docker `SecurityOpt` entry.
pub fn security_opt() -> String {
    format!("seccomp={}", profile_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_has_the_upstream_shape() {
        let names: Vec<_> = allowed_syscalls().collect();
        assert_eq!(names.len(), 326);
        for must in ["statx", "openat2", "clone3", "unshare", "close_range"] {
            assert!(names.contains(&must), "{must} missing");
        }
        for never in ["mount", "ptrace", "bpf", "io_uring_setup", "rseq", "keyctl"] {
            assert!(!names.contains(&never), "{never} allowed");
        }
        let v: serde_json::Value = serde_json::from_str(&profile_json()).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(v.get("architectures").is_none());
        assert!(v["syscalls"][0]["args"].is_null());
        assert!(security_opt().starts_with("seccomp={"));
    }
}
