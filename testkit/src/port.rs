//! Ports for servers a test starts as child processes, which must be told a port before they
//! bind it. Asking the kernel for a free one and closing it again races: the kernel hands the
//! same ephemeral port to the next `bind(:0)`, in this test or another. These ports come from
//! below the ephemeral range (Linux: 32768 and up), so the kernel never picks them for anyone
//! else, each at most once per test process, and only after a bind shows nobody holds it.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// The range handed out: above the well-known and registered services tests might meet,
/// below the kernel's ephemeral range.
const FIRST: u32 = 20_000;
const SPAN: u32 = 12_000;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A port on 127.0.0.1 that nothing listens on now and this process has not handed out before.
pub fn free_port() -> u16 {
    // Test binaries of one run start at different places in the range.
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIRST + (start + n) % SPAN;
        let port = u16::try_from(port).expect("the range is below 65536");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port from {FIRST} to {}", FIRST + SPAN);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_and_never_handed_out_twice() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let unique: std::collections::HashSet<_> = ports.iter().collect();
        assert_eq!(unique.len(), ports.len());
        for p in ports {
            assert!((20_000..32_000).contains(&p), "{p}");
            TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }
}
