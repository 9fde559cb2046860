//! The HIS-facing connections, below actix-web. Each accepted connection is counted against its
//! client's cap ([`Conns`]) and wrapped in a [`Conn`], which gives the few answers actix-http writes
//! by itself, before any claimgate code runs, the gateway's envelope like every other answer:
//! a request it cannot frame (400: Content-Length with Transfer-Encoding, a negative or doubled
//! Content-Length, bytes that are not HTTP), a head over its size limit (431) and a head not sent in
//! time (408). actix writes these with an empty body and offers no hook for them; an HIS reading
//! `infcode` from the body would otherwise see nothing at all.

use super::guard::{ConnSlot, Conns};
use super::rescue::Failure;
use crate::telemetry::metrics;
use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::rt::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Io {
    fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(t) => t,
            Io::Tls(t) => t.get_ref().0,
        }
    }

    fn pin(&mut self) -> Pin<&mut dyn AsyncReadWrite> {
        match self {
            Io::Plain(t) => Pin::new(t),
            Io::Tls(t) => Pin::new(t.as_mut()),
        }
    }
}

/// One accepted HIS connection, counted until it drops.
pub struct Conn {
    io: Io,
    peer: SocketAddr,
    slot: Arc<ConnSlot>,
    head_timeout_ms: u64,
    /// The envelope that replaces an answer of actix's own, and how much of it is written.
    own: Vec<u8>,
    own_sent: usize,
}

impl Conn {
    /// A plain connection, or `None` when its client is at its cap ([`Conns::admit`] has then
    /// answered and shut it).
    pub fn plain(io: TcpStream, conns: &Arc<Conns>, head_timeout_ms: u64) -> Option<Conn> {
        Conn::accept(Io::Plain(io), conns, head_timeout_ms)
    }

    /// A TLS connection after its handshake, or `None` over the cap.
    pub fn tls(io: TlsStream<TcpStream>, conns: &Arc<Conns>, head_timeout_ms: u64) -> Option<Conn> {
        Conn::accept(Io::Tls(Box::new(io)), conns, head_timeout_ms)
    }

    /// A socket whose peer cannot be read is already gone: dropped, uncounted.
    fn accept(io: Io, conns: &Arc<Conns>, head_timeout_ms: u64) -> Option<Conn> {
        let peer = io.tcp().peer_addr().ok()?;
        let slot = conns.admit(io.tcp(), peer.ip(), matches!(io, Io::Plain(_)))?;
        Some(Conn { io, peer, slot, head_timeout_ms, own: Vec::new(), own_sent: 0 })
    }

    /// The connection's slot in its client's count (kept in the connection's data, where a
    /// request's body deadline finds it).
    pub fn slot(&self) -> &Arc<ConnSlot> {
        &self.slot
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Writes what is left of a replacement envelope.
    fn poll_own(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.own_sent < self.own.len() {
            let n = ready!(self.io.pin().poll_write(cx, &self.own[self.own_sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.own_sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> AsyncReadWrite for T {}

/// An answer actix-http writes by itself, with an empty body, before any claimgate code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    Framing,
    HeadTooLarge,
    HeadTimeout,
}

impl Own {
    const ALL: [Own; 3] = [Own::Framing, Own::HeadTooLarge, Own::HeadTimeout];

    /// Its status line after `HTTP/1.x`, and the length header, as actix writes them.
    fn written(self) -> &'static [u8] {
        match self {
            Own::Framing => b" 400 Bad Request\r\ncontent-length: 0\r\n",
            Own::HeadTooLarge => b" 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
            Own::HeadTimeout => b" 408 Request Timeout\r\ncontent-length: 0\r\n",
        }
    }

    fn failure(self, head_timeout_ms: u64) -> Failure<'static> {
        match self {
            Own::Framing => Failure::Framing,
            Own::HeadTooLarge => Failure::HeadTooLarge,
            Own::HeadTimeout => Failure::HeadTimeout { ms: head_timeout_ms },
        }
    }

    /// The `claimgate_refused_total` reason.
    fn reason(self) -> &'static str {
        match self {
            Own::Framing => "framing",
            Own::HeadTooLarge => "head_too_large",
            Own::HeadTimeout => "head_timeout",
        }
    }
}

/// Where, in bytes about to be written, an answer of actix's own begins, and which. Such an answer
/// is the last thing written on its connection (actix closes it after), so it ends the bytes; and
/// every answer claimgate writes has a body, so an empty-bodied 400, 408 or 431 there is actix's.
fn actix_answer(buf: &[u8]) -> Option<(usize, Own)> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let from = buf.len().saturating_sub(256);
    Own::ALL.into_iter().find_map(|own| {
        let at = from + memchr::memmem::rfind(&buf[from..], own.written())?;
        let start = at.checked_sub(8)?;
        let head_end = memchr::memmem::find(&buf[at..], b"\r\n\r\n")? + at + 4;
        (buf[start..at].starts_with(b"HTTP/1.") && head_end == buf.len()).then_some((start, own))
    })
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io.pin().poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_own(cx))?;
        match actix_answer(buf) {
            None => this.io.pin().poll_write(cx, buf),
            // What comes before it (answers to earlier pipelined requests) goes out as it is.
            Some((start, _)) if start > 0 => this.io.pin().poll_write(cx, &buf[..start]),
            Some((_, own)) => {
                metrics::REFUSED.with_label_values(&[own.reason()]).inc();
                this.own = own.failure(this.head_timeout_ms).raw_http();
                this.own_sent = 0;
                // The rest, if the socket takes it only in part, goes out from poll_flush/shutdown.
                if let Poll::Ready(Err(e)) = this.poll_own(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(buf.len()))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_own(cx))?;
        this.io.pin().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_own(cx))?;
        this.io.pin().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "date: Mon, 07 Dec 2026 17:03:24 GMT\r\n\r\n";

    #[test]
    fn actix_own_empty_answers_are_found_at_the_end_of_what_is_written() {
        let framing = format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n{DATE}");
        assert_eq!(actix_answer(framing.as_bytes()), Some((0, Own::Framing)));
        let large = format!("HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n{DATE}");
        assert_eq!(actix_answer(large.as_bytes()), Some((0, Own::HeadTooLarge)));
        let slow = format!("HTTP/1.0 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n{DATE}");
        assert_eq!(actix_answer(slow.as_bytes()), Some((0, Own::HeadTimeout)));
        // After the answer to an earlier pipelined request: found where it starts.
        let earlier = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n{DATE}{{}}");
        let both = format!("{earlier}{framing}");
        assert_eq!(actix_answer(both.as_bytes()), Some((earlier.len(), Own::Framing)));
    }

    #[test]
    fn claimgate_own_answers_and_bodies_are_left_alone() {
        // An envelope 400 with a body, an empty 200, a body that ends in a blank line.
        let with_body = format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 13\r\n{DATE}{{\"error\":\"x\"}}");
        assert_eq!(actix_answer(with_body.as_bytes()), None);
        let empty_ok = format!("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n{DATE}");
        assert_eq!(actix_answer(empty_ok.as_bytes()), None);
        // The 400 head inside a body, followed by more body: not at a head's end.
        let inside =
            format!("HTTP/1.1 200 OK\r\ncontent-length: 80\r\n{DATE}HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx\r\n\r\nmore\r\n\r\n");
        assert_eq!(actix_answer(inside.as_bytes()), None);
    }
}
