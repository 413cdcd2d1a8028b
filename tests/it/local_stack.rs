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

/// `with-stack.sh` stops DynamoDB Local even when a second Ctrl-C comes while it is
/// stopping a command that does not stop on the first.
#[test]
fn with_stack_stops_dynamodb_local_even_on_a_second_ctrl_c() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    // Through python3 only to give the script Ctrl-C's default disposition back: the test
    // runs under `with-stack.sh ... &`, and a shell's background jobs start with SIGINT
    // ignored, which a script can then neither trap nor reset.
    let restore_sigint = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp('bash', ['bash'] + sys.argv[1:])";
    let mut script = Command::new("python3")
        .args(["-c", restore_sigint])
        .arg(format!("{root}/infra/scripts/with-stack.sh"))
        .args(["--", "bash", "-c", "trap '' INT TERM; echo ready; sleep 60"])
        .env_remove("DYNAMODB_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("with-stack.sh");
    let stderr = BufReader::new(script.stderr.take().expect("stderr"));
    let endpoint = stderr
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("DynamoDB Local on ").map(str::to_string))
        .expect("with-stack.sh names DynamoDB Local's endpoint");
    let mut stdout = BufReader::new(script.stdout.take().expect("stdout"));
    let mut ready = String::new();
    stdout.read_line(&mut ready).expect("the command started");
    assert_eq!(ready.trim(), "ready");

    let interrupt = || Command::new("kill").args(["-INT", &script.id().to_string()]).status().expect("kill");
    interrupt();
    // The command ignores TERM, so the cleanup is waiting for it when the second one comes.
    std::thread::sleep(Duration::from_millis(500));
    interrupt();
    let asked = std::time::Instant::now();
    let status = script.wait().expect("with-stack.sh ends");
    let took = asked.elapsed();
    eprintln!("with-stack.sh ended {took:?} after the first Ctrl-C");
    assert!(
        took < Duration::from_secs(20),
        "a command that ignores TERM is killed after 10 s; took {took:?}"
    );
    let port = port_of(&endpoint);
    let gone = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1))
        .is_err();
    assert!(gone, "DynamoDB Local still answers on {endpoint} after with-stack.sh ended ({status:?})");
}
