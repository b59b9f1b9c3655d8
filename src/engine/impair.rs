//! Network impairment in the harness's own packet path: per-participant loss and delay, applied by
//! the driver to the datagrams a participant sends (up), receives (down) or both.
//!
//! Two pure pieces, no clock and no socket, so they are tested in virtual time:
//! - [`Impairer`]: one participant's [`Link`] and its seeded RNG; for every datagram it decides
//!   "drop" or "deliver at". The same seed gives the same decisions for the same datagram sequence.
//! - [`DelayQueue`]: the datagrams held back, ordered by release instant (ties keep arrival order).
//!   The driver keeps one per event-loop thread and wakes at its earliest deadline, so a delayed
//!   datagram costs a heap entry, never a thread, a task or a sleep.
//!
//! Delay is `delay + uniform(0..jitter)` per datagram, independently, so jitter larger than the
//! packet interval reorders packets, as a real jittery path does.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::scenario::Direction;

/// Salt mixed into the participant's seed, so the impairment draws are independent of the
/// participant's own uses of the same seed (stream ids, RTP start values).
const SEED_SALT: u64 = 0x696d_7061_6972_6d74;

/// The impairment of one participant's path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Probability that a datagram is dropped, `0..=1`.
    pub loss: f64,
    /// Fixed extra one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..jitter` per datagram.
    pub jitter: Duration,
    /// Which datagrams are affected, seen from the participant.
    pub direction: Direction,
}

impl Link {
    /// Whether datagrams the participant sends are impaired.
    pub fn up(&self) -> bool {
        matches!(self.direction, Direction::Up | Direction::Both)
    }

    /// Whether datagrams the participant receives are impaired.
    pub fn down(&self) -> bool {
        matches!(self.direction, Direction::Down | Direction::Both)
    }

    /// Whether this link delays at all (otherwise kept datagrams pass straight through).
    pub fn delays(&self) -> bool {
        !self.delay.is_zero() || !self.jitter.is_zero()
    }
}

/// What happens to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Drop,
    /// Deliver (or send) it at this instant; equal to `now` when the link does not delay.
    At(Instant),
}

/// One participant's link and the RNG its decisions come from.
#[derive(Debug)]
pub struct Impairer {
    link: Link,
    rng: StdRng,
    /// Datagrams dropped so far.
    pub dropped: u64,
    /// Datagrams held back so far.
    pub delayed: u64,
}

impl Impairer {
    /// An impairer for `link`, seeded from the participant's `seed`.
    pub fn new(link: Link, seed: u64) -> Self {
        Impairer {
            link,
            rng: StdRng::seed_from_u64(seed ^ SEED_SALT),
            dropped: 0,
            delayed: 0,
        }
    }

    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Decides the fate of one datagram handed over at `now`. Call only for datagrams in a
    /// direction the link covers ([`Link::up`], [`Link::down`]).
    pub fn judge(&mut self, now: Instant) -> Verdict {
        let loss = self.link.loss.clamp(0.0, 1.0);
        // `random::<f64>()` is uniform in [0, 1): loss 0 never drops, loss 1 always does.
        if loss > 0.0 && self.rng.random::<f64>() < loss {
            self.dropped += 1;
            return Verdict::Drop;
        }
        if !self.link.delays() {
            return Verdict::At(now);
        }
        let jitter = if self.link.jitter.is_zero() {
            Duration::ZERO
        } else {
            let j = u64::try_from(self.link.jitter.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(self.rng.random_range(0..j))
        };
        self.delayed += 1;
        Verdict::At(now + self.link.delay + jitter)
    }
}

/// An item held until its release instant.
#[derive(Debug)]
struct Held<T> {
    at: Instant,
    order: u64,
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl<T> Eq for Held<T> {}

impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Held<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// Items released in order of their instant; equal instants in the order they were pushed.
#[derive(Debug)]
pub struct DelayQueue<T> {
    heap: BinaryHeap<Reverse<Held<T>>>,
    order: u64,
}

impl<T> Default for DelayQueue<T> {
    fn default() -> Self {
        DelayQueue {
            heap: BinaryHeap::new(),
            order: 0,
        }
    }
}

impl<T> DelayQueue<T> {
    /// Holds `item` until `at`.
    pub fn push(&mut self, at: Instant, item: T) {
        self.order += 1;
        self.heap.push(Reverse(Held {
            at,
            order: self.order,
            item,
        }));
    }

    /// The earliest release instant, if anything is held.
    pub fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(h)| h.at)
    }

    /// The next item due by `now`, with its release instant.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.next_at()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(h)| (h.at, h.item))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(loss: f64, delay_ms: u64, jitter_ms: u64) -> Link {
        Link {
            loss,
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
            direction: Direction::Both,
        }
    }

    #[test]
    fn directions() {
        let mut l = link(0.0, 0, 0);
        assert!(l.up() && l.down());
        l.direction = Direction::Up;
        assert!(l.up() && !l.down());
        l.direction = Direction::Down;
        assert!(!l.up() && l.down());
        assert!(!l.delays());
        assert!(link(0.0, 0, 1).delays());
    }

    #[test]
    fn loss_rate_matches_the_link_and_is_seeded() {
        let now = Instant::now();
        let n = 100_000;
        let run = |seed| {
            let mut imp = Impairer::new(link(0.05, 0, 0), seed);
            let verdicts: Vec<_> = (0..n).map(|_| imp.judge(now)).collect();
            (imp.dropped, verdicts)
        };
        let (dropped, a) = run(7);
        let rate = dropped as f64 / n as f64;
        // Binomial σ at n = 1e5 is 0.07 %; 0.3 % is over 4 σ.
        assert!((rate - 0.05).abs() < 0.003, "loss {rate}");
        assert_eq!(a, run(7).1, "same seed, same decisions");
        assert_ne!(a, run(8).1, "another seed, other decisions");
        assert!(
            a.iter()
                .all(|v| *v == Verdict::Drop || *v == Verdict::At(now))
        );
    }

    #[test]
    fn no_loss_never_drops_full_loss_always_does() {
        let now = Instant::now();
        let mut none = Impairer::new(link(0.0, 0, 0), 1);
        let mut all = Impairer::new(link(1.0, 0, 0), 1);
        for _ in 0..10_000 {
            assert_eq!(none.judge(now), Verdict::At(now));
            assert_eq!(all.judge(now), Verdict::Drop);
        }
    }

    #[test]
    fn delay_plus_uniform_jitter() {
        let now = Instant::now();
        let mut imp = Impairer::new(link(0.0, 50, 10), 3);
        let delays: Vec<Duration> = (0..10_000)
            .map(|_| match imp.judge(now) {
                Verdict::At(t) => t - now,
                Verdict::Drop => panic!("no loss configured"),
            })
            .collect();
        let min = *delays.iter().min().unwrap();
        let max = *delays.iter().max().unwrap();
        assert!(min >= Duration::from_millis(50) && min < Duration::from_millis(51));
        assert!(max < Duration::from_millis(60) && max > Duration::from_millis(59));
        let mean = delays.iter().sum::<Duration>() / delays.len() as u32;
        let mean_ms = mean.as_secs_f64() * 1e3;
        assert!((mean_ms - 55.0).abs() < 0.2, "mean {mean_ms} ms");
        assert_eq!(imp.delayed, 10_000);
    }

    #[test]
    fn queue_releases_in_time_order_in_virtual_time() {
        // A 20 ms packet stream through 50 ms ± 30 ms jitter: every packet comes out exactly at
        // its release instant, some overtake others, none is lost or duplicated.
        let start = Instant::now();
        let mut imp = Impairer::new(link(0.0, 50, 30), 11);
        let mut q = DelayQueue::default();
        let mut sent_at = Vec::new();
        for k in 0..500u64 {
            let now = start + Duration::from_millis(20 * k);
            let Verdict::At(at) = imp.judge(now) else {
                panic!("no loss configured")
            };
            q.push(at, k);
            sent_at.push(now);
        }
        assert_eq!(q.len(), 500);
        let mut out = Vec::new();
        let mut now = start;
        // Virtual time jumps to the next deadline; nothing is released early.
        while let Some(next) = q.next_at() {
            assert!(next >= now);
            now = next;
            while let Some((at, k)) = q.pop_due(now) {
                assert_eq!(at, now);
                let d = at - sent_at[k as usize];
                assert!(d >= Duration::from_millis(50) && d < Duration::from_millis(80));
                out.push(k);
            }
        }
        assert!(q.is_empty());
        let reordered = out.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(reordered > 10, "{reordered} reorderings");
        out.sort_unstable();
        assert_eq!(out, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn equal_instants_keep_push_order() {
        let t = Instant::now();
        let mut q = DelayQueue::default();
        for k in 0..5 {
            q.push(t, k);
        }
        assert_eq!(q.pop_due(t - Duration::from_millis(1)), None);
        let out: Vec<_> = std::iter::from_fn(|| q.pop_due(t).map(|(_, k)| k)).collect();
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
    }
}
