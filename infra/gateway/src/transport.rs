//! The gateway's connections. The HTTP server (hyper) answers a request head it cannot
//! parse by itself, before any handler runs: a URI over its 64 KiB limit (414), a header
//! section over its buffer (431), a malformed request line or header (400), each with an
//! empty body. Every error the local stack produces is problem+json, so the connection
//! replaces exactly those automatic answers with the problem the contract gives them.
//!
//! They are told apart from the handler's own answers by their shape: one of those three
//! statuses with `content-length: 0` and no `content-type`, which no answer of ours has
//! (every problem carries a body and its type). The server writes them whole, in one
//! write, and closes the connection after them.

use axum::serve::Listener;
use http::StatusCode;
use shared::http::problem::Problem;
use shared::http::ApiError;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections answer unreadable requests with problem+json.
pub struct ProblemListener(pub TcpListener);

impl Listener for ProblemListener {
    type Io = ProblemIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        (ProblemIo { inner: stream, pending: Vec::new() }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// One connection: reads pass through; a write that is one of the server's automatic
/// answers is swapped for its problem+json form, written before anything else.
pub struct ProblemIo {
    inner: TcpStream,
    /// Replacement bytes not yet written.
    pending: Vec<u8>,
}

impl ProblemIo {
    /// Writes what is left of a replacement.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

/// The problem+json response for `head`, when it is one of the server's automatic answers.
pub fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    if end + 4 != head.len() {
        return None;
    }
    let text = std::str::from_utf8(&head[..end]).ok()?.to_ascii_lowercase();
    let mut lines = text.split("\r\n");
    let status = lines.next()?.strip_prefix("http/1.1 ")?.get(..3)?.to_string();
    let headers: Vec<&str> = lines.collect();
    let empty = headers.iter().any(|h| h.replace(' ', "") == "content-length:0");
    let typed = headers.iter().any(|h| h.starts_with("content-type:"));
    if !empty || typed {
        return None;
    }
    let error = match StatusCode::from_bytes(status.as_bytes()).ok()? {
        StatusCode::URI_TOO_LONG => ApiError::UriTooLong,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ApiError::HeadersTooLarge,
        StatusCode::BAD_REQUEST => ApiError::MalformedRequest,
        _ => return None,
    };
    let request_id = ulid::Ulid::new().to_string();
    tracing::info!(request_id, status, "request head refused by the HTTP server");
    let resp = Problem::from(error).into_response(&request_id);
    let mut out = format!(
        "HTTP/1.1 {}\r\nconnection: close\r\ncontent-length: {}\r\n{}: {request_id}\r\n",
        resp.status(),
        resp.body().len(),
        shared::http::REQUEST_ID_HEADER,
    );
    for (name, value) in resp.headers() {
        out.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap_or_default()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(resp.body());
    Some(bytes)
}

impl AsyncRead for ProblemIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProblemIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(problem) = replacement(buf) {
            self.pending = problem;
            // The server's bytes count as written: the replacement goes out in their place.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// Not vectored, so that the server hands each response head over in one write
    /// (`replacement` sees it whole).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_empty_error_answers_are_replaced() {
        let hyper = |status: &str| format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\ndate: x\r\n\r\n");
        for (status, code) in [
            ("414 URI Too Long", "uri_too_long"),
            ("431 Request Header Fields Too Large", "headers_too_large"),
        ] {
            let out =
                String::from_utf8(replacement(hyper(status).as_bytes()).expect("replaced")).expect("utf8");
            assert!(out.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{out}");
            assert!(out.contains("content-type: application/problem+json"), "{out}");
            assert!(out.contains(&format!("\"code\":\"{code}\"")), "{out}");
        }
        assert!(replacement(hyper("400 Bad Request").as_bytes()).is_some());
        // Our own answers carry a type and a body; other statuses are never the server's.
        assert!(replacement(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n"
        )
        .is_none());
        assert!(replacement(hyper("404 Not Found").as_bytes()).is_none());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}").is_none());
    }
}
