//! The kernel's receive timestamps on a TCP socket (Linux's `SO_TIMESTAMPNS`), through nix's
//! safe wrappers since the workspace forbids `unsafe`.
//!
//! For TCP the kernel hands back, with each `recvmsg`, the time it received the newest segment
//! whose bytes that call returned: a read of one byte gets the arrival of the segment holding
//! it, a larger read the arrival of the last segment it drained.

#[cfg(target_os = "linux")]
pub use linux::*;
#[cfg(not(target_os = "linux"))]
pub use other::*;

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime};

    use nix::sys::socket::{
        ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt::ReceiveTimestampns,
    };
    use nix::sys::time::TimeSpec;
    use tokio::net::TcpStream;

    /// Room for the one control message a read can carry; kept with the socket so that reads do
    /// not allocate.
    pub fn control_space() -> Vec<u8> {
        nix::cmsg_space!(TimeSpec)
    }

    /// Whether the kernel agreed to stamp this socket's reads.
    pub fn enable(tcp: &TcpStream) -> bool {
        setsockopt(tcp, ReceiveTimestampns, &true).is_ok()
    }

    /// One non-blocking read into `dst`: the bytes read and, when the kernel stamped them, when
    /// they arrived (CLOCK_REALTIME). `WouldBlock` comes back as an error, as tokio's `try_io`
    /// expects.
    pub fn recv(
        tcp: &TcpStream,
        dst: &mut [u8],
        control: &mut [u8],
    ) -> io::Result<(usize, Option<SystemTime>)> {
        let mut iov = [io::IoSliceMut::new(dst)];
        let msg = recvmsg::<()>(tcp.as_raw_fd(), &mut iov, Some(control), MsgFlags::empty())
            .map_err(io::Error::from)?;
        // A truncated control buffer (ENOBUFS) only costs the stamp, never the bytes.
        let at = msg.cmsgs().ok().and_then(|mut cmsgs| {
            cmsgs.find_map(|c| match c {
                ControlMessageOwned::ScmTimestampns(ts) => {
                    SystemTime::UNIX_EPOCH.checked_add(Duration::from(ts))
                }
                _ => None,
            })
        });
        Ok((msg.bytes, at))
    }
}

/// Elsewhere the kernel is never asked, and reads keep their user space stamps.
#[cfg(not(target_os = "linux"))]
mod other {
    use std::io;
    use std::time::SystemTime;

    use tokio::net::TcpStream;

    pub fn control_space() -> Vec<u8> {
        Vec::new()
    }

    pub fn enable(_: &TcpStream) -> bool {
        false
    }

    pub fn recv(
        _: &TcpStream,
        _: &mut [u8],
        _: &mut [u8],
    ) -> io::Result<(usize, Option<SystemTime>)> {
        Err(io::ErrorKind::Unsupported.into())
    }
}
