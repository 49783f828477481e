//! ICMP echo as a step: a few echo requests to a host, failed when more go unanswered than the
//! step allows or the round trips are too slow. The mean round trip of those answered is the
//! step's `ttfb` phase.
//!
//! surge-ping does the sockets and packets: it opens an unprivileged datagram ("ping") socket
//! where the kernel's `ping_group_range` allows the agent's group, and a raw socket otherwise
//! (root or CAP_NET_RAW), and it matches replies to requests by identifier and sequence, which
//! a raw socket needs because it sees every ICMP packet the host receives.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use lookout_conf::{Dur, Report, Spanned, duration_in, number_in};
use lookout_model::probe::{Failure, FailureKind, Outcome, StepResult};
use serde::Deserialize;
use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};

use super::{Probe, StepContext};
use crate::http::{self, IpFamily, Limits};

/// `icmp:` in a step, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIcmp {
    /// A name or an IP address.
    pub host: Spanned<String>,
    pub ip: Option<Spanned<IpFamily>>,
    /// Echo requests sent.
    pub count: Option<Spanned<u16>>,
    /// Between one request and the next.
    pub interval: Option<Spanned<Dur>>,
    /// Requests that may go unanswered before the step fails.
    pub max_lost: Option<Spanned<u16>>,
    /// The mean round trip of the answered requests must be below this.
    pub max_rtt: Option<Spanned<Dur>>,
}

#[derive(Debug)]
pub struct IcmpStep {
    pub host: String,
    pub ip: Option<IpFamily>,
    pub count: u16,
    pub interval: Duration,
    pub max_lost: u16,
    pub max_rtt: Option<Duration>,
}

/// How long one request waits for its reply, at most (the journey's deadline may end it
/// sooner), as `ping` waits by default.
const REPLY_WAIT: Duration = Duration::from_secs(1);
/// The payload of each request: `ping`'s usual 56 bytes.
const PAYLOAD: [u8; 56] = [0x55; 56];

impl RawIcmp {
    /// Validated once, at load; each error reported where it was written.
    pub fn build(self, at: &str, report: &mut Report) -> Option<IcmpStep> {
        let count = number_in(
            report,
            self.count.as_ref(),
            &format!("{at}.icmp.count"),
            3,
            1,
            100,
        );
        let interval = duration_in(
            report,
            &self.interval,
            &format!("{at}.icmp.interval"),
            Duration::from_millis(200),
            Duration::from_millis(10),
            Duration::from_secs(10),
        );
        let max_rtt = self.max_rtt.as_ref().map(|_| {
            duration_in(
                report,
                &self.max_rtt,
                &format!("{at}.icmp.max_rtt"),
                Duration::ZERO,
                Duration::from_micros(1),
                Duration::from_secs(60),
            )
        });
        let max_lost = match &self.max_lost {
            Some(m) if m.value >= count => {
                report(
                    m.loc(),
                    &format!("{at}.icmp.max_lost"),
                    format!(
                        "max_lost {} would let all {count} requests go unanswered: it must be below count",
                        m.value
                    ),
                );
                return None;
            }
            Some(m) => m.value,
            None => 0,
        };
        if self.host.value.trim().is_empty() {
            report(
                self.host.loc(),
                &format!("{at}.icmp.host"),
                "is empty: write a name or an IP address".into(),
            );
            return None;
        }
        Some(IcmpStep {
            host: self.host.value,
            ip: self.ip.map(|i| i.value),
            count,
            interval,
            max_lost,
            max_rtt,
        })
    }
}

impl Probe for IcmpStep {
    fn run<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, (StepResult, Outcome)> {
        Box::pin(async move {
            let started = Instant::now();
            let mut result = ctx.result();
            let outcome = self.echo(ctx.limits, &mut result).await;
            ctx.finish(started, result, outcome)
        })
    }
}

/// Identifiers of this agent's requests, each run its own: replies on a raw socket are
/// everyone's.
static NEXT_IDENT: AtomicU16 = AtomicU16::new(0);

fn ident() -> PingIdentifier {
    // Mixed with the process id, so that two agents on one host do not start alike.
    let n = NEXT_IDENT.fetch_add(1, Ordering::Relaxed);
    PingIdentifier(n ^ (std::process::id() as u16).rotate_left(7))
}

/// What an answer that is not an echo reply says (surge-ping hands a request's ICMP errors
/// back as its answer): `None` for an echo reply.
fn not_a_reply(packet: &IcmpPacket) -> Option<String> {
    let (kind, code, from, unreachable, exceeded) = match packet {
        IcmpPacket::V4(p) if p.get_icmp_type().0 == 0 => return None,
        IcmpPacket::V6(p) if p.get_icmpv6_type().0 == 129 => return None,
        IcmpPacket::V4(p) => (
            p.get_icmp_type().0,
            p.get_icmp_code().0,
            IpAddr::V4(p.get_source()),
            3,
            11,
        ),
        IcmpPacket::V6(p) => (
            p.get_icmpv6_type().0,
            p.get_icmpv6_code().0,
            IpAddr::V6(p.get_source()),
            1,
            3,
        ),
    };
    let what = if kind == unreachable {
        "destination unreachable"
    } else if kind == exceeded {
        "time exceeded"
    } else {
        "an ICMP message that is not an echo reply"
    };
    Some(format!("{what} (type {kind}, code {code}), from {from}"))
}

impl IcmpStep {
    async fn echo(&self, limits: &Limits, result: &mut StepResult) -> Result<(), Failure> {
        let (addr, dns) = http::resolve(&self.host, 0, self.ip, limits).await?;
        result.phases.dns_us = http::us(dns);
        let ip = addr.ip();
        let kind = match ip {
            IpAddr::V4(_) => ICMP::V4,
            IpAddr::V6(_) => ICMP::V6,
        };
        let client = Client::new(&Config::builder().kind(kind).build()).map_err(|e| {
            http::fail(
                FailureKind::Connect,
                format!(
                    "no ICMP socket could be opened ({e}): the agent needs an unprivileged ping socket \
                     (sysctl net.ipv{}.ping_group_range including its group) or raw sockets (root, or CAP_NET_RAW)",
                    if ip.is_ipv4() { 4 } else { 6 }
                ),
            )
        })?;
        let mut pinger = client.pinger(ip, ident()).await;
        let mut rtts = Vec::new();
        let mut lost = 0u16;
        for seq in 0..self.count {
            let now = Instant::now();
            let Some(left) = limits.deadline.checked_duration_since(now) else {
                lost += self.count - seq;
                break;
            };
            pinger.timeout(left.min(REPLY_WAIT.max(self.interval)));
            let sent = Instant::now();
            match pinger.ping(PingSequence(seq), &PAYLOAD).await {
                Ok((packet, rtt)) => match not_a_reply(&packet) {
                    None => rtts.push(rtt),
                    // A router's word for the host: no use waiting for the rest.
                    Some(why) => {
                        return Err(http::fail(
                            FailureKind::Connect,
                            format!("echo request {} to {ip}: {why}", seq + 1),
                        ));
                    }
                },
                Err(SurgeError::Timeout { .. }) => lost += 1,
                Err(e) => {
                    return Err(http::fail(
                        FailureKind::Connect,
                        format!("echo request {} to {ip} failed: {e}", seq + 1),
                    ));
                }
            }
            if seq + 1 < self.count {
                let next = sent + self.interval;
                if next >= limits.deadline {
                    lost += self.count - seq - 1;
                    break;
                }
                tokio::time::sleep_until(next.into()).await;
            }
        }
        result.bytes = (rtts.len() * PAYLOAD.len()) as u64;
        if rtts.is_empty() {
            return Err(http::fail(
                FailureKind::Timeout,
                format!(
                    "no reply to any of {} echo requests to {ip} (the journey's timeout is {})",
                    self.count,
                    humantime::format_duration(limits.timeout)
                ),
            ));
        }
        let mean = rtts.iter().sum::<Duration>() / rtts.len() as u32;
        result.phases.ttfb_us = http::us(mean);
        if lost > self.max_lost {
            return Err(http::fail(
                FailureKind::Assertion,
                format!(
                    "{lost} of {} echo requests to {ip} went unanswered, more than max_lost {}",
                    self.count, self.max_lost
                ),
            ));
        }
        if let Some(max) = self.max_rtt
            && mean >= max
        {
            return Err(http::fail(
                FailureKind::Assertion,
                format!(
                    "the mean round trip to {ip} is {:.3} ms, not below max_rtt {}",
                    mean.as_secs_f64() * 1e3,
                    humantime::format_duration(max)
                ),
            ));
        }
        Ok(())
    }
}
