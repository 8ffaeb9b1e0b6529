//! Who is on the other end of a request: the client's address (through trusted reverse
//! proxies) and the origins the relay accepts for WebSockets and signed logins.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The TCP peer of a request, as the routes see it (`warp::ext::optional::<Peer>()`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The client's address. A peer that is one of the `trusted` proxies is replaced by the nearest
/// untrusted hop named in `X-Forwarded-For` (all its lines, in order), read from the right, as
/// each proxy appends the address it saw. `Forwarded` is not read: common proxies pass a
/// client's own `Forwarded` header through unchanged, so it could name anyone.
pub fn client_ip(peer: IpAddr, x_forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = x_forwarded_for
        .iter()
        .flat_map(|line| line.split(','))
        .filter_map(parse_node)
        .map(canonical)
        .collect();
    hops.iter().rev().find(|ip| !is_trusted(ip)).or(hops.first()).copied().unwrap_or(peer)
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, as a dual-stack listener reports IPv4 peers) as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Ok(sock) = text.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    text.strip_prefix('[').and_then(|t| t.split(']').next()).and_then(|t| t.parse().ok())
}

/// The origins a browser may open `/ws` from, and that clients may sign when they log in.
///
/// With `--public-origin`, exactly that one. Without it, never whatever `Host` a request names
/// (a malicious relay could then make this one accept logins signed for itself): only `http://`
/// origins of the address the relay listens on.
pub fn allowed_origins(public_origin: Option<&str>, local: SocketAddr) -> Result<Vec<String>, String> {
    if let Some(origin) = public_origin {
        return Ok(vec![origin.trim_end_matches('/').to_string()]);
    }
    let port = local.port();
    let ip = local.ip();
    if ip.is_unspecified() {
        return Err(format!(
            "listening on all interfaces ({local}) needs --public-origin, the address browsers use \
             (e.g. https://chat.example.org), so logins are bound to it"
        ));
    }
    let mut origins = vec![match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
    }];
    if ip.is_loopback() {
        origins.push(format!("http://localhost:{port}"));
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn only_trusted_proxies_may_name_the_client() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // An untrusted peer's headers are ignored.
        assert_eq!(client_ip(ip("203.0.113.9"), &["1.1.1.1"], &trusted), ip("203.0.113.9"));
        // A spoofed left-hand entry is skipped: the nearest untrusted hop counts.
        assert_eq!(client_ip(proxy, &["1.1.1.1, 198.51.100.7, 10.0.0.5"], &trusted), ip("198.51.100.7"));
        // Every line of the header counts, in order (a proxy may add a line of its own).
        assert_eq!(client_ip(proxy, &["1.1.1.1", "198.51.100.8"], &trusted), ip("198.51.100.8"));
        assert_eq!(client_ip(proxy, &["[2001:db8::1]:4711"], &trusted), ip("2001:db8::1"));
        // A trusted proxy that names nobody is the client.
        assert_eq!(client_ip(proxy, &[], &trusted), proxy);
        assert_eq!(client_ip(proxy, &["garbage"], &trusted), proxy);
        // A dual-stack listener's IPv4-mapped peer is trusted as the IPv4 address it is.
        assert_eq!(client_ip(ip("::ffff:10.0.0.2"), &["198.51.100.9"], &trusted), ip("198.51.100.9"));
    }

    #[test]
    fn origins_follow_the_listening_address_unless_one_is_configured() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            allowed_origins(None, local).unwrap(),
            vec!["http://127.0.0.1:8080".to_string(), "http://localhost:8080".to_string()]
        );
        assert_eq!(allowed_origins(None, "[::1]:9".parse().unwrap()).unwrap()[0], "http://[::1]:9");
        assert_eq!(
            allowed_origins(Some("https://chat.example.org/"), local).unwrap(),
            vec!["https://chat.example.org"]
        );
        assert!(allowed_origins(None, "0.0.0.0:8080".parse().unwrap()).is_err());
        assert!(allowed_origins(Some("https://chat.example.org"), "0.0.0.0:8080".parse().unwrap()).is_ok());
    }
}
