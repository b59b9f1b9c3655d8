//! Heap held by the SFU per session of a receive-only audio call, counted by a global allocator
//! around the real core while the str0m simulation drives it in virtual time: the SFU's share is
//! what dropping the core gives back. Measured: ~160 KB per session, ~90 KB of it in one
//! allocation of 64 KB or more per session, the size of str0m's transport-wide-CC send history
//! (1000 records, fixed in str0m), which fills whenever the client negotiates transport-cc, BWE
//! or not. Issue #4's goal is 100 KB (see reports/perf/README.md); this test guards against
//! growth beyond today's figure.

mod sfu_sim;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sfu_sim::{ClientOpts, Sim};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// The workspace denies unsafe code; a global allocator cannot be written without it.
// SAFETY: every method passes its arguments unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the only addition is arithmetic on an atomic counter.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received (see the impl's comment).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Today's figure plus a quarter: a regression bound, not issue #4's 100 KB goal.
const BOUND: usize = 200 * 1024;

#[test]
fn receive_only_audio_session_heap_stays_bounded() {
    const LISTENERS: usize = 30;
    let mut sim = Sim::with_bwe(false);
    let speak = ClientOpts {
        speak: true,
        ..Default::default()
    };
    let speakers = [sim.join("call1", speak), sim.join("call1", speak)];
    for _ in 0..LISTENERS {
        sim.join("call1", ClientOpts::default());
    }
    // Long enough for every binding, a few RTCP rounds and full send histories.
    sim.run_for(Duration::from_secs(8));
    for i in 0..sim.clients.len() {
        for &s in speakers.iter().filter(|&&s| s != i) {
            assert!(
                sim.received_from(i, s).len() > 100,
                "client {i} gets speaker {s}"
            );
        }
    }
    let empty = Sim::with_bwe(false).sfu;
    let before = LIVE.load(Ordering::Relaxed);
    drop(std::mem::replace(&mut sim.sfu, empty));
    let freed = before.saturating_sub(LIVE.load(Ordering::Relaxed));
    let per_session = freed / sim.clients.len();
    eprintln!(
        "sfu heap: {freed} B for {} sessions = {:.1} KB per session",
        sim.clients.len(),
        per_session as f64 / 1024.0
    );
    assert!(freed > 0, "dropping the core frees its sessions");
    assert!(
        per_session <= BOUND,
        "{per_session} B per session, bound {BOUND} B"
    );
}
