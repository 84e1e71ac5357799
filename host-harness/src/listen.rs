//! Listening sockets with a backlog sized for bursts: the standard library's 128 pending
//! connections drop the SYNs of a burst (a thousand syncs at once), whose clients then wait
//! out TCP's retransmission timers (1 s, 3 s, 7 s ...) before they are even accepted.

use std::net::{TcpListener, ToSocketAddrs};

/// Connections the kernel queues before they are accepted (capped by `net.core.somaxconn`).
pub const BACKLOG: i32 = 4096;

/// Binds `address` (e.g. `127.0.0.1:0`, `localhost:8080`) with [`BACKLOG`].
pub fn listen(address: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for address in address.to_socket_addrs()? {
        match bind(address) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{address} names no address"),
        )
    }))
}

fn bind(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    // A restarted server rebinds its port at once rather than after TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
