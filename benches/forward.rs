//! The SFU's forwarding hot path: one SRTP audio packet in → N SRTP packets out, through the real
//! core (str0m decrypt, route, N × str0m encrypt). Reports time per input packet; divide by N for
//! CPU-µs per forwarded packet (printed at the end for each N). `forward_audio` runs the SFU with a
//! bandwidth estimator per session (`callsref sfu --bwe`, for simulcast layer choice);
//! `forward_audio_no_bwe` as `callsref sfu` runs by default.

#[path = "../reference-server/tests/sfu_sim/mod.rs"]
mod sfu_sim;

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sfu_sim::{ClientOpts, Sim};

/// A call with one speaker and `n` connected listeners, every listener bound to the voice track.
fn setup(n: usize, bwe: bool) -> Sim {
    let mut sim = Sim::with_bwe(bwe);
    let spk = sim.join(
        "call1",
        ClientOpts {
            speak: true,
            ..Default::default()
        },
    );
    for _ in 0..n {
        sim.join("call1", ClientOpts::default());
    }
    sim.run_for(Duration::from_secs(4));
    for i in 1..=n {
        assert!(
            sim.received_from(i, spk).len() > 50,
            "listener {i} not bound"
        );
    }
    sim.clients[spk].next_media = None;
    sim
}

fn forward(c: &mut Criterion) {
    for (name, bwe) in [("forward_audio", true), ("forward_audio_no_bwe", false)] {
        group(c, name, bwe);
    }
}

fn group(c: &mut Criterion, name: &str, bwe: bool) {
    let mut g = c.benchmark_group(name);
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for n in [1usize, 10, 50] {
        let mut sim = setup(n, bwe);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    // Fresh packets each chunk (replayed SRTP would be dropped, not forwarded);
                    // between chunks the simulation runs so ICE consent and RTCP stay alive.
                    let chunk = left.min(100);
                    left -= chunk;
                    let packets = sim.capture_audio(0, chunk);
                    let start = Instant::now();
                    let mut sent = 0;
                    for p in &packets {
                        sent += sim.sfu_ingest(0, p);
                    }
                    total += start.elapsed();
                    assert!(
                        sent >= packets.len() * n,
                        "forwarded {sent} for {} packets",
                        packets.len()
                    );
                    sim.release_held();
                    sim.run_for(Duration::from_millis(1));
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
