//! Batched receive: up to [`BATCH`] datagrams of one socket per `recvmmsg(2)` call, through nix's
//! safe wrapper, into buffers and headers allocated once per event-loop thread.
//!
//! Each participant has its own socket (see the driver docs), so a batch holds what queued up on
//! one participant's port since the loop last looked: under load that is several datagrams, and
//! even one datagram costs one syscall instead of two (`recvfrom` plus the `recvfrom` that returns
//! `WouldBlock`), because a short batch means the socket is drained. With edge-triggered epoll a
//! datagram that arrives after the call raises a new readiness event, so nothing is stranded.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};

use super::RECV_BUF;

/// Datagrams per receive call.
pub(super) const BATCH: usize = 16;

/// Receive buffers and message headers for one thread.
pub(super) struct RecvBatch {
    headers: MultiHeaders<SockaddrStorage>,
    bufs: Vec<u8>,
    /// Length and source of each datagram of the last call.
    meta: [(usize, Option<SocketAddr>); BATCH],
    len: usize,
}

impl RecvBatch {
    pub(super) fn new() -> Self {
        RecvBatch {
            headers: MultiHeaders::preallocate(BATCH, None),
            bufs: vec![0; BATCH * RECV_BUF],
            meta: [(0, None); BATCH],
            len: 0,
        }
    }

    /// Reads up to [`BATCH`] datagrams; returns how many (0 when none was waiting). Fewer than
    /// [`BATCH`] means the socket is drained.
    pub(super) fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        self.len = 0;
        let mut chunks = self.bufs.chunks_mut(RECV_BUF);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
            // Invariant: `bufs` holds exactly BATCH chunks of RECV_BUF bytes.
            [IoSliceMut::new(
                chunks.next().expect("BATCH receive buffers"),
            )]
        });
        let received = match recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(r) => r,
            Err(nix::errno::Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(io::Error::from(e)),
        };
        let mut n = 0;
        for (slot, msg) in self.meta.iter_mut().zip(received) {
            *slot = (msg.bytes, msg.address.as_ref().and_then(std_addr));
            n += 1;
        }
        self.len = n;
        Ok(n)
    }

    /// The `k`-th datagram of the last call: its bytes and source (`None` if the kernel gave
    /// none, which does not happen for UDP).
    pub(super) fn get(&self, k: usize) -> Option<(&[u8], Option<SocketAddr>)> {
        if k >= self.len {
            return None;
        }
        let (n, source) = self.meta[k];
        let start = k * RECV_BUF;
        Some((&self.bufs[start..start + n.min(RECV_BUF)], source))
    }
}

fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use super::*;

    #[test]
    fn reads_a_burst_in_batches() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&rx).unwrap(), 0, "nothing waiting");
        let total = BATCH + 3;
        for k in 0..total {
            tx.send_to(&vec![k as u8; 10 + k], rx.local_addr().unwrap())
                .unwrap();
        }
        // Poll until everything is read (loopback delivery may lag the send a little).
        let mut got = Vec::new();
        let mut calls = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < total && std::time::Instant::now() < deadline {
            let n = batch.recv(&rx).unwrap();
            assert!(n <= BATCH);
            if n > 0 {
                calls += 1;
            }
            for k in 0..n {
                let (bytes, from) = batch.get(k).unwrap();
                assert_eq!(from, Some(tx.local_addr().unwrap()));
                got.push(bytes.to_vec());
            }
            assert!(batch.get(n).is_none());
        }
        let want: Vec<Vec<u8>> = (0..total).map(|k| vec![k as u8; 10 + k]).collect();
        assert_eq!(got, want, "every datagram, in order, intact");
        assert!(calls >= 2, "more than BATCH datagrams take two calls");
        assert_eq!(batch.recv(&rx).unwrap(), 0);
    }

    #[test]
    fn ipv6_sources_convert() {
        let Ok(rx) = UdpSocket::bind("[::1]:0") else {
            // No IPv6 loopback on this host: nothing to check.
            return;
        };
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        tx.send_to(b"hi", rx.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(&rx).unwrap(), 1);
        assert_eq!(
            batch.get(0).unwrap(),
            (&b"hi"[..], Some(tx.local_addr().unwrap()))
        );
    }
}
