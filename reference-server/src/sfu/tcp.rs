//! ICE-TCP, passive side (RFC 6544): the SFU listens on `rtc.ice_port_tcp`, offers a `tcptype
//! passive` host candidate next to the UDP one, and carries each connection's STUN, DTLS and SRTP
//! as RFC 4571 frames (a 2-byte big-endian length, then the packet). This is rtcd's fallback for
//! clients that cannot reach the UDP port.
//!
//! The I/O is tokio tasks (one reader and one writer per connection; TCP is a fallback path, not
//! the hot one). Frames go to the RTC thread as [`TcpFrame`]s through the driver's command
//! channel; the core's TCP transmits come back through [`TcpConns::send`], which routes them by
//! remote address to the connection's writer. The core sees TCP only as `Protocol::Tcp` on its
//! inputs and transmits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use str0m::net::Transmit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Largest RFC 4571 frame: the length prefix is 16 bits.
pub const MAX_FRAME: usize = u16::MAX as usize;
/// How long a new connection may take to send its first frame (a STUN binding request).
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames queued towards one connection before further ones are dropped (as a full UDP socket
/// buffer would); about a second of video.
const WRITE_QUEUE: usize = 512;

/// One packet read from an ICE-TCP connection.
#[derive(Debug)]
pub struct TcpFrame {
    /// The client's end of the connection.
    pub source: SocketAddr,
    pub data: Vec<u8>,
}

/// The open ICE-TCP connections by remote address, and the address the SFU advertises for them.
/// Cheap to clone; an unconfigured one (no listener) routes nothing.
#[derive(Debug, Clone, Default)]
pub struct TcpConns {
    /// The passive host candidate's address: each frame's destination as str0m sees it.
    pub advertised: Option<SocketAddr>,
    writers: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>,
}

impl TcpConns {
    /// Connections for a listener whose candidate advertises `advertised`.
    pub fn new(advertised: SocketAddr) -> TcpConns {
        TcpConns {
            advertised: Some(advertised),
            writers: Arc::default(),
        }
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frames a transmit and queues it on the connection to its destination. A transmit for a
    /// connection that has closed, or whose queue is full, is dropped (the peer's ICE and NACKs
    /// recover, as for a lost datagram).
    pub fn send(&self, t: &Transmit) {
        let Some(frame) = frame(&t.contents) else {
            tracing::debug!(len = t.contents.len(), "tcp transmit too large for a frame");
            return;
        };
        let writers = self.lock();
        if let Some(tx) = writers.get(&t.destination)
            && tx.try_send(frame).is_err()
        {
            tracing::debug!(dest = %t.destination, "tcp write queue full or closed");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>> {
        self.writers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Accepts connections until the listener fails; each frame read goes to `deliver`.
    pub async fn serve(
        self,
        listener: TcpListener,
        deliver: impl Fn(TcpFrame) + Clone + Send + Sync + 'static,
    ) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "ice-tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (tx, rx) = mpsc::channel(WRITE_QUEUE);
            self.lock().insert(peer, tx);
            let conns = self.clone();
            let deliver = deliver.clone();
            tokio::spawn(async move {
                conns.connection(stream, peer, rx, deliver).await;
                conns.lock().remove(&peer);
            });
        }
    }

    /// Runs one connection until either direction ends.
    async fn connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        mut rx: mpsc::Receiver<Vec<u8>>,
        deliver: impl Fn(TcpFrame),
    ) {
        let (mut read, mut write) = stream.into_split();
        let writer = async move {
            while let Some(f) = rx.recv().await {
                if write.write_all(&f).await.is_err() {
                    return;
                }
            }
        };
        let reader = async move {
            let mut first = true;
            loop {
                let frame = read_frame(&mut read);
                let data = if first {
                    match tokio::time::timeout(FIRST_FRAME_TIMEOUT, frame).await {
                        Ok(r) => r,
                        Err(_) => return,
                    }
                } else {
                    frame.await
                };
                let Ok(data) = data else { return };
                // Like rtcd's TCP mux: a connection must open with ICE (a STUN message).
                if first && !is_stun(&data) {
                    tracing::debug!(%peer, "ice-tcp connection did not start with stun");
                    return;
                }
                first = false;
                deliver(TcpFrame { source: peer, data });
            }
        };
        tokio::select! {
            _ = writer => {}
            _ = reader => {}
        }
    }
}

/// Reads one RFC 4571 frame.
async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let len = r.read_u16().await? as usize;
    let mut data = vec![0; len];
    r.read_exact(&mut data).await?;
    Ok(data)
}

/// A packet with its RFC 4571 length prefix; `None` if it does not fit one frame.
pub fn frame(packet: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(packet.len()).ok()?;
    let mut f = Vec::with_capacity(2 + packet.len());
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(packet);
    Some(f)
}

/// Whether a packet is a STUN message (RFC 5389: top two bits zero, the magic cookie at 4..8).
fn is_stun(p: &[u8]) -> bool {
    p.len() >= 20 && p[0] & 0xc0 == 0 && p[4..8] == [0x21, 0x12, 0xa4, 0x42]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_like(len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[..2].copy_from_slice(&[0x00, 0x01]);
        p[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        p
    }

    /// Frames in both directions over a real loopback connection: a frame split across writes
    /// arrives whole, a transmit reaches the connection by its remote address, a connection that
    /// does not open with STUN is closed, and closed connections leave the table.
    #[tokio::test]
    async fn frames_round_trip_and_non_stun_connections_are_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = TcpConns::new(addr);
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(conns.clone().serve(listener, move |f| {
            let _ = tx.send(f);
        }));

        let mut client = TcpStream::connect(addr).await.unwrap();
        let me = client.local_addr().unwrap();
        let first = stun_like(20);
        let big = stun_like(1500);
        let mut bytes = frame(&first).unwrap();
        bytes.extend(frame(&big).unwrap());
        // Split mid-prefix and mid-payload: framing must not depend on read boundaries.
        for chunk in [&bytes[..1], &bytes[1..30], &bytes[30..]] {
            client.write_all(chunk).await.unwrap();
            client.flush().await.unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..2 {
            let f = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
            got.push(f.unwrap().unwrap());
        }
        assert_eq!(got[0].source, me);
        assert_eq!(got[0].data, first);
        assert_eq!(got[1].data, big);

        let t = Transmit {
            proto: str0m::net::Protocol::Tcp,
            source: addr,
            destination: me,
            contents: vec![7u8; 300].into(),
        };
        conns.send(&t);
        let mut back = vec![0u8; 302];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back[..2], &300u16.to_be_bytes());
        assert!(back[2..].iter().all(|b| *b == 7));

        let mut rogue = TcpStream::connect(addr).await.unwrap();
        rogue
            .write_all(&frame(b"GET / HTTP/1.1").unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(20), rogue.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "a non-stun connection stays open");

        drop(client);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !conns.is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} open",
                conns.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn a_packet_over_64k_has_no_frame() {
        assert!(frame(&vec![0; MAX_FRAME]).is_some());
        assert!(frame(&vec![0; MAX_FRAME + 1]).is_none());
        assert!(is_stun(&stun_like(20)));
        assert!(!is_stun(&[0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0]));
    }
}
