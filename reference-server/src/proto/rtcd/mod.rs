//! rtcd's wire formats (rtcd.md §1.3–1.4, §2.1–2.6): HTTP bodies, the plugin ⇄ rtcd WebSocket frames,
//! the `rtc` message payloads, the data-channel messages and the id formats.
//!
//! Shared by the harness (which plays the Calls plugin and the end users) and the reference SFU (which
//! plays rtcd). Decoders take untrusted bytes and return typed errors, never panic.

pub mod http;
