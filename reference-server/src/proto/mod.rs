//! Wire formats of the real services, exact where a client can tell.
//!
//! Every decoder here takes untrusted bytes and returns a typed error for malformed input; none of
//! them panics. The facts come from `shared/specs/rtcd.md` §1–2 and `shared/specs/offloader.md` §1–2.

pub mod auth;
pub mod offloader;
pub mod rtcd;
