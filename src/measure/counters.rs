//! Hot counters: per-packet tallies as relaxed atomics, shared by every I/O thread, read once a second
//! by the aggregator.
//!
//! Relaxed ordering is enough: each counter is an independent monotonic tally, nothing is published
//! through it, and the aggregator only needs every increment to show up eventually (a packet counted
//! in the next second instead of this one moves a figure by one packet, not a result).
//!
//! Wire bandwidth is accounted the way a NIC counts it, so figures compare with node_exporter and the
//! published tables (calls-loadtest.md §2.3): UDP payload + UDP header (8 B) + IP header (20 B IPv4,
//! 40 B IPv6) + a per-packet L2 overhead (14 B Ethernet by default; set 0 for loopback-only figures,
//! 18 with a VLAN tag). "In" and "out" are the target's view: bytes the harness sends are the target's
//! ingress. Signalling over TCP/WebSocket is not counted; it is negligible next to media.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::record::TrackKind;

/// Bytes of a UDP header.
pub const UDP_HEADER: u64 = 8;
/// Bytes of an IPv4 header without options.
pub const IPV4_HEADER: u64 = 20;
/// Bytes of an IPv6 header without extension headers.
pub const IPV6_HEADER: u64 = 40;
/// Default per-packet L2 overhead: an Ethernet II header (14 B) as Linux NIC byte counters see it.
pub const DEFAULT_L2_OVERHEAD: u64 = 14;

/// What a UDP datagram carries, for per-flow bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// RTP of a media track.
    Media(TrackKind),
    /// Everything else on the media path: RTCP, STUN, DTLS, SCTP.
    Control,
}

impl Flow {
    fn index(self) -> usize {
        match self {
            Flow::Media(kind) => kind.index(),
            Flow::Control => 3,
        }
    }
}

/// IP version of the media path, which fixes the IP header size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpVersion {
    V4,
    V6,
}

/// Per-packet header overhead added to each UDP payload to get bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireOverhead {
    /// IP version of the media path.
    pub ip: IpVersion,
    /// L2 bytes per packet (14 for Ethernet II).
    pub l2_bytes: u64,
}

impl Default for WireOverhead {
    fn default() -> Self {
        Self {
            ip: IpVersion::V4,
            l2_bytes: DEFAULT_L2_OVERHEAD,
        }
    }
}

impl WireOverhead {
    /// Bytes added to every UDP payload.
    pub fn per_packet(&self) -> u64 {
        let ip = match self.ip {
            IpVersion::V4 => IPV4_HEADER,
            IpVersion::V6 => IPV6_HEADER,
        };
        ip + UDP_HEADER + self.l2_bytes
    }
}

/// One direction's tallies for one flow.
#[derive(Debug, Default)]
struct Tally {
    packets: AtomicU64,
    wire_bytes: AtomicU64,
}

/// Media-quality tallies for one received track kind.
#[derive(Debug, Default)]
struct Quality {
    expected: AtomicU64,
    lost: AtomicU64,
}

/// The shared hot counters of one harness process. Put it in an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct HotCounters {
    overhead: WireOverhead,
    /// Harness → target (the target's ingress), per [`Flow`].
    to_target: [Tally; 4],
    /// Target → harness (the target's egress), per [`Flow`].
    from_target: [Tally; 4],
    quality: [Quality; 3],
}

/// A copy of every counter at one moment; differences of two are per-interval figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterValues {
    /// Packets to the target per flow (audio, screen, video, control).
    pub packets_in: [u64; 4],
    /// Wire bytes to the target per flow.
    pub bytes_in: [u64; 4],
    /// Packets from the target per flow.
    pub packets_out: [u64; 4],
    /// Wire bytes from the target per flow.
    pub bytes_out: [u64; 4],
    /// Media packets the receivers expected, per kind (from extended sequence numbers).
    pub expected: [u64; 3],
    /// Media packets still missing after the retransmission window, per kind.
    pub lost: [u64; 3],
}

impl CounterValues {
    /// `self − earlier`, per field (saturating, so a reset never yields a huge value).
    pub fn since(&self, earlier: &CounterValues) -> CounterValues {
        fn sub<const N: usize>(a: [u64; N], b: [u64; N]) -> [u64; N] {
            std::array::from_fn(|i| a[i].saturating_sub(b[i]))
        }
        CounterValues {
            packets_in: sub(self.packets_in, earlier.packets_in),
            bytes_in: sub(self.bytes_in, earlier.bytes_in),
            packets_out: sub(self.packets_out, earlier.packets_out),
            bytes_out: sub(self.bytes_out, earlier.bytes_out),
            expected: sub(self.expected, earlier.expected),
            lost: sub(self.lost, earlier.lost),
        }
    }
}

impl HotCounters {
    /// Counters that add `overhead` to every datagram.
    pub fn new(overhead: WireOverhead) -> Self {
        Self {
            overhead,
            to_target: Default::default(),
            from_target: Default::default(),
            quality: Default::default(),
        }
    }

    /// The overhead in use.
    pub fn overhead(&self) -> WireOverhead {
        self.overhead
    }

    /// The harness sent one UDP datagram of `payload` bytes to the target.
    pub fn sent(&self, flow: Flow, payload: usize) {
        let t = &self.to_target[flow.index()];
        t.packets.fetch_add(1, Ordering::Relaxed);
        t.wire_bytes.fetch_add(
            payload as u64 + self.overhead.per_packet(),
            Ordering::Relaxed,
        );
    }

    /// The harness received one UDP datagram of `payload` bytes from the target.
    pub fn received(&self, flow: Flow, payload: usize) {
        let t = &self.from_target[flow.index()];
        t.packets.fetch_add(1, Ordering::Relaxed);
        t.wire_bytes.fetch_add(
            payload as u64 + self.overhead.per_packet(),
            Ordering::Relaxed,
        );
    }

    /// A receiver's loss accounting moved on: `expected` more packets were due, `lost` of them are
    /// given up on.
    pub fn media_quality(&self, kind: TrackKind, expected: u64, lost: u64) {
        let q = &self.quality[kind.index()];
        q.expected.fetch_add(expected, Ordering::Relaxed);
        q.lost.fetch_add(lost, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn values(&self) -> CounterValues {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CounterValues {
            packets_in: std::array::from_fn(|i| load(&self.to_target[i].packets)),
            bytes_in: std::array::from_fn(|i| load(&self.to_target[i].wire_bytes)),
            packets_out: std::array::from_fn(|i| load(&self.from_target[i].packets)),
            bytes_out: std::array::from_fn(|i| load(&self.from_target[i].wire_bytes)),
            expected: std::array::from_fn(|i| load(&self.quality[i].expected)),
            lost: std::array::from_fn(|i| load(&self.quality[i].lost)),
        }
    }
}

impl Default for HotCounters {
    fn default() -> Self {
        Self::new(WireOverhead::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_bytes_include_ip_udp_and_l2() {
        let c = HotCounters::default();
        // One Opus packet of calls-loadtest.md §2.5: 149 B payload + RTP/SRTP ≈ 183 B UDP payload.
        c.sent(Flow::Media(TrackKind::Audio), 183);
        let v = c.values();
        assert_eq!(v.packets_in[0], 1);
        assert_eq!(v.bytes_in[0], 183 + 8 + 20 + 14);
        let c6 = HotCounters::new(WireOverhead {
            ip: IpVersion::V6,
            l2_bytes: 0,
        });
        c6.received(Flow::Control, 100);
        assert_eq!(c6.values().bytes_out[3], 148);
    }

    #[test]
    fn deltas_are_per_interval() {
        let c = HotCounters::default();
        c.media_quality(TrackKind::Screen, 10, 1);
        let a = c.values();
        c.media_quality(TrackKind::Screen, 5, 2);
        let d = c.values().since(&a);
        assert_eq!((d.expected[1], d.lost[1]), (5, 2));
        assert_eq!(a.since(&c.values()).expected[1], 0);
    }

    #[test]
    fn counters_add_up_across_threads() {
        let c = std::sync::Arc::new(HotCounters::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.received(Flow::Media(TrackKind::Video), 1000);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let v = c.values();
        assert_eq!(v.packets_out[2], 4000);
        assert_eq!(v.bytes_out[2], 4000 * 1042);
    }
}
