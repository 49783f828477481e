//! `lookout bench icmp-responder`: answers ICMP echo requests exactly `--delay` after each
//! arrives, for the ICMP row of `bench probes`. It runs inside a network namespace whose
//! kernel does not answer echo itself (`icmp_echo_ignore_all`), since no delay can be injected
//! into the kernel's own replies where netem is not available. A thread per request sleeps to
//! within 200 µs of its deadline and spins the rest, as the exact target does.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

#[derive(clap::Args)]
pub struct Args {
    /// The delay before each reply.
    #[arg(long, value_parser = humantime::parse_duration)]
    delay: Duration,
}

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The echo reply to an IPv4 packet holding an echo request, and where it goes.
fn reply_to(packet: &[u8]) -> Option<(Vec<u8>, Ipv4Addr)> {
    let header = usize::from(packet.first()? & 0x0f) * 4;
    let from = Ipv4Addr::new(
        *packet.get(12)?,
        *packet.get(13)?,
        *packet.get(14)?,
        *packet.get(15)?,
    );
    let icmp = packet.get(header..)?;
    if icmp.len() < 8 || icmp[0] != 8 {
        return None;
    }
    let mut reply = icmp.to_vec();
    reply[0] = 0;
    reply[2] = 0;
    reply[3] = 0;
    let sum = checksum(&reply);
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    Some((reply, from))
}

/// Answers until killed; prints `icmp-responder ready` once its socket is open.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let socket = Arc::new(Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::ICMPV4),
    )?);
    println!("icmp-responder ready");
    let mut buf = [0u8; 2048];
    loop {
        let n = (&*socket).read(&mut buf)?;
        let arrived = Instant::now();
        let Some((reply, to)) = reply_to(&buf[..n]) else {
            continue;
        };
        let (socket, delay) = (socket.clone(), args.delay);
        std::thread::spawn(move || {
            crate::exact_target::wait_exactly(arrived + delay);
            let _ = socket.send_to(&reply, &SockAddr::from(SocketAddr::from((to, 0))));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_request_is_answered_with_its_id_sequence_and_payload() {
        // IPv4 header (20 bytes, from 10.213.0.1), then type 8, code 0, checksum, id 0x1234,
        // sequence 7, payload.
        let mut request = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 213, 0, 1, 10, 213, 0, 2,
        ];
        let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 7, b'h', b'i'];
        let sum = checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        request.extend_from_slice(&icmp);
        let (reply, to) = reply_to(&request).unwrap();
        assert_eq!(to, Ipv4Addr::new(10, 213, 0, 1));
        assert_eq!(reply[0], 0);
        assert_eq!(&reply[4..], &icmp[4..]);
        assert_eq!(
            checksum(&reply),
            0,
            "a packet with its checksum sums to zero"
        );
        icmp[0] = 0;
        let mut not_a_request = request[..20].to_vec();
        not_a_request.extend_from_slice(&icmp);
        assert_eq!(reply_to(&not_a_request), None);
    }
}
