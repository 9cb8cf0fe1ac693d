//! Source addresses for outgoing connections (`--source-ip`, and the loopback addresses
//! `--procs` hands its shard processes): each connection binds the next one, in turn,
//! before it connects. One source address has ~28k ephemeral ports towards one target
//! (`net.ipv4.ip_local_port_range`); more addresses multiply that.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::net::{TcpSocket, TcpStream};

/// The addresses to connect from, taken in turn.
#[derive(Debug, Default)]
pub struct Sources {
    addrs: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Sources {
    /// Connections take `addrs` in turn; an empty list binds nothing (the kernel picks).
    pub fn new(addrs: Vec<IpAddr>) -> Self {
        Sources {
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    /// The addresses, in the order they are taken.
    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// The next source address of the same family as `to`; `None` when the list has none
    /// (then the kernel picks).
    pub fn pick(&self, to: &SocketAddr) -> Option<IpAddr> {
        let fits = |a: &&IpAddr| a.is_ipv4() == to.is_ipv4();
        let count = self.addrs.iter().filter(fits).count();
        if count == 0 {
            return None;
        }
        let n = self.next.fetch_add(1, Relaxed) % count;
        self.addrs.iter().filter(fits).nth(n).copied()
    }

    /// Opens TCP to `to` from the next source address (or from wherever the kernel picks).
    pub async fn connect(&self, to: SocketAddr) -> std::io::Result<TcpStream> {
        let Some(from) = self.pick(&to) else {
            return TcpStream::connect(to).await;
        };
        let socket = match from {
            IpAddr::V4(_) => TcpSocket::new_v4()?,
            IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        no_port_at_bind(&socket);
        socket.bind(SocketAddr::new(from, 0)).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot bind the source address {from}: {e}"),
            )
        })?;
        socket.connect(to).await
    }
}

/// Asks Linux to choose the source port at connect time, not at bind: a port bound
/// without a destination could not be reused towards another target, capping a source
/// address at ~28k connections in all rather than per target.
#[cfg(target_os = "linux")]
fn no_port_at_bind(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads `one` (a c_int of the size given) on a socket we own; a
    // failure only loses the optimisation.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn no_port_at_bind(_: &TcpSocket) {}

/// Reads one address of `--source-ip A,B,...`.
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.trim().parse::<IpAddr>().map_err(|_| {
        format!(
            "'{}' is not an IP address; write e.g. 10.0.0.5,10.0.0.6",
            s.trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_taken_in_turn_within_the_target_family() {
        let list = ["127.0.0.2", " 127.0.0.3", "::1"].map(|a| parse_ip(a).unwrap());
        let s = Sources::new(list.to_vec());
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        let picked: Vec<_> = (0..4).map(|_| s.pick(&v4).unwrap().to_string()).collect();
        assert_eq!(picked, ["127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.3"]);
        assert_eq!(s.pick(&v6).unwrap().to_string(), "::1");
        assert_eq!(Sources::default().pick(&v4), None);
    }

    #[test]
    fn a_bad_list_says_what_to_write() {
        let e = parse_ip("nope").unwrap_err();
        assert!(e.contains("'nope'") && e.contains("write e.g."), "{e}");
    }

    #[tokio::test]
    async fn a_connection_comes_from_the_source_address() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = l.local_addr().unwrap();
        let s = Sources::new(vec!["127.0.0.7".parse().unwrap()]);
        let (c, a) = tokio::join!(s.connect(to), l.accept());
        assert_eq!(
            c.unwrap().local_addr().unwrap().ip().to_string(),
            "127.0.0.7"
        );
        assert_eq!(a.unwrap().1.ip().to_string(), "127.0.0.7");
    }
}
