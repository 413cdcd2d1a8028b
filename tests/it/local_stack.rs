//! The local stack keeps to this machine: its services listen on loopback only, so a
//! laptop running `make dev` offers nothing to the network it is on.

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// This machine's address towards other hosts (a UDP "connect" sends nothing), or `None`
/// when it has no route off the machine.
fn outward_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn port_of(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).expect("a port")
}

#[test]
fn dynamodb_local_and_moto_listen_on_loopback_only() {
    let mut endpoints = vec![std::env::var("DYNAMODB_ENDPOINT").expect("DYNAMODB_ENDPOINT (run make test)")];
    endpoints.extend(std::env::var("SCHEDULER_ENDPOINT").ok());
    for endpoint in &endpoints {
        let port = port_of(endpoint);
        assert!(
            TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1))
                .is_ok(),
            "{endpoint} answers on loopback"
        );
        match outward_address() {
            Some(ip) => assert!(
                TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(1)).is_err(),
                "{endpoint} must not be reachable on {ip}"
            ),
            None => eprintln!("this machine has no address besides loopback: {endpoint} cannot be exposed"),
        }
    }
}
