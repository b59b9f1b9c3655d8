//! Batched datagram I/O for the RTC thread: `recvmmsg(2)` reads whatever queued on the shared
//! socket in one call, `sendmmsg(2)` writes a fan-out's copies (one per receiver, each to its own
//! address) in one call, and `poll(2)` waits when nothing is queued.
//!
//! Per datagram the old loop made four syscalls (a `setsockopt` for the read timeout, a
//! `recvfrom`, and one `sendto` per copy); under load this makes one per batch each way. The
//! socket stays blocking, so a full send buffer still holds the thread back rather than dropping
//! (reads ask for `MSG_DONTWAIT` per call instead). Everything is allocated once, on the RTC
//! thread (nix's headers hold raw pointers, so they are not `Send` and cannot be built earlier).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use str0m::net::Transmit;

/// Datagrams per `recvmmsg`/`sendmmsg` call.
pub const BATCH: usize = 32;
/// Largest datagram read (rtcd reads with an MTU of 1460; leave room for jumbo frames).
const DATAGRAM: usize = 2048;

/// Preallocated state for reading and writing batches on one socket.
pub struct Batcher {
    recv_headers: MultiHeaders<SockaddrStorage>,
    recv_bufs: Box<[u8]>,
    /// Length and source of each datagram of the last read.
    received: Vec<(usize, Option<SocketAddr>)>,
    send_headers: MultiHeaders<SockaddrStorage>,
    /// Transmits waiting for the next [`Batcher::flush`].
    queued: Vec<Transmit>,
}

impl Batcher {
    pub fn new() -> Batcher {
        Batcher {
            recv_headers: MultiHeaders::preallocate(BATCH, None),
            recv_bufs: vec![0; BATCH * DATAGRAM].into_boxed_slice(),
            received: Vec::with_capacity(BATCH),
            send_headers: MultiHeaders::preallocate(BATCH, None),
            queued: Vec::with_capacity(BATCH),
        }
    }

    /// Reads what is queued on the socket without waiting, up to [`BATCH`] datagrams; returns
    /// how many (0: nothing was waiting).
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received.clear();
        let mut bufs = self.recv_bufs.chunks_exact_mut(DATAGRAM);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
            // Invariant: `recv_bufs` is exactly BATCH chunks of DATAGRAM bytes.
            [IoSliceMut::new(bufs.next().expect("one buffer per slot"))]
        });
        let results = match recvmmsg(
            socket.as_raw_fd(),
            &mut self.recv_headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(r) => r,
            Err(Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        for r in results {
            let source = r.address.as_ref().and_then(socket_addr);
            self.received.push((r.bytes.min(DATAGRAM), source));
        }
        Ok(self.received.len())
    }

    /// The `i`-th datagram of the last [`Batcher::recv`]: its bytes and source (`None` only for
    /// an address family UDP does not use).
    pub fn datagram(&self, i: usize) -> Option<(&[u8], Option<SocketAddr>)> {
        let (len, source) = *self.received.get(i)?;
        let start = i * DATAGRAM;
        Some((&self.recv_bufs[start..start + len], source))
    }

    /// Queues a transmit; sends the queue when it holds a full batch.
    pub fn push(&mut self, socket: &UdpSocket, t: Transmit) {
        self.queued.push(t);
        if self.queued.len() >= BATCH {
            self.flush(socket);
        }
    }

    /// Sends every queued transmit, [`BATCH`] per syscall.
    pub fn flush(&mut self, socket: &UdpSocket) {
        let mut start = 0;
        while start < self.queued.len() {
            let end = self.queued.len().min(start + BATCH);
            match self.send(socket, start, end) {
                Ok(n) => start += n.max(1),
                Err(e) => {
                    // The datagram at `start` failed (e.g. ICMP unreachable from a departed peer,
                    // reported on a later send): drop that one and go on with the rest.
                    let dest = self.queued[start].destination;
                    tracing::debug!(error = %e, %dest, "udp send failed");
                    start += 1;
                }
            }
        }
        self.queued.clear();
    }

    /// One `sendmmsg` of `queued[start..end]`; how many the kernel took.
    fn send(&mut self, socket: &UdpSocket, start: usize, end: usize) -> io::Result<usize> {
        let batch = &self.queued[start..end];
        let mut slices: [[IoSlice<'_>; 1]; BATCH] = [[IoSlice::new(&[])]; BATCH];
        let mut addrs: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
        for (i, t) in batch.iter().enumerate() {
            slices[i] = [IoSlice::new(&t.contents)];
            addrs[i] = Some(SockaddrStorage::from(t.destination));
        }
        let sent = sendmmsg(
            socket.as_raw_fd(),
            &mut self.send_headers,
            slices[..batch.len()].iter(),
            &addrs[..batch.len()],
            [],
            MsgFlags::empty(),
        )?;
        Ok(sent.count())
    }
}

/// Waits until the socket is readable or `timeout` passes (rounded up to whole milliseconds, so
/// a deadline is never woken for early and spun on). An interrupted wait counts as a wake-up.
pub fn wait(socket: &UdpSocket, timeout: Duration) -> io::Result<()> {
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
    match poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    ) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from(std::net::SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::net::Protocol;

    fn transmit(to: SocketAddr, from: SocketAddr, bytes: Vec<u8>) -> Transmit {
        Transmit {
            proto: Protocol::Udp,
            source: from,
            destination: to,
            contents: bytes.into(),
        }
    }

    #[test]
    fn fans_out_in_batches_and_reads_them_back() {
        let sfu = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peers: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut b = Batcher::new();
        let total = 2 * BATCH + 5;
        let from = sfu.local_addr().unwrap();
        for k in 0..total {
            let to = peers[k % 3].local_addr().unwrap();
            b.push(&sfu, transmit(to, from, vec![k as u8; 20 + k]));
        }
        b.flush(&sfu);
        // Every peer gets its third, in order, intact (each read waits up to 20 s under load).
        for (p, peer) in peers.iter().enumerate() {
            peer.set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            for k in (p..total).step_by(3) {
                let mut buf = [0u8; 256];
                let (n, src) = peer.recv_from(&mut buf).unwrap();
                assert_eq!(src, from);
                assert_eq!(&buf[..n], &vec![k as u8; 20 + k][..]);
            }
        }
        // The reverse direction: a burst of more than a batch needs several reads.
        for (k, peer) in peers.iter().enumerate() {
            for j in 0..BATCH {
                peer.send_to(&[k as u8, j as u8], from).unwrap();
            }
        }
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while got.len() < 3 * BATCH && std::time::Instant::now() < deadline {
            wait(&sfu, Duration::from_millis(100)).unwrap();
            let n = b.recv(&sfu).unwrap();
            assert!(n <= BATCH);
            for i in 0..n {
                let (bytes, src) = b.datagram(i).unwrap();
                assert_eq!(src, Some(peers[bytes[0] as usize].local_addr().unwrap()));
                got.push((bytes[0], bytes[1]));
            }
            assert!(b.datagram(n).is_none());
        }
        got.sort();
        let want: Vec<(u8, u8)> = (0..3u8)
            .flat_map(|k| (0..BATCH as u8).map(move |j| (k, j)))
            .collect();
        assert_eq!(got, want);
        assert_eq!(b.recv(&sfu).unwrap(), 0, "drained");
    }

    #[test]
    fn a_failing_destination_does_not_stop_the_batch() {
        let sfu = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let from = sfu.local_addr().unwrap();
        let mut b = Batcher::new();
        // Port 0 is not a valid destination: the kernel refuses that one datagram.
        b.push(
            &sfu,
            transmit("127.0.0.1:0".parse().unwrap(), from, vec![1]),
        );
        b.push(&sfu, transmit(peer.local_addr().unwrap(), from, vec![2]));
        b.flush(&sfu);
        peer.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 8];
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[2]);
    }
}
