//! The platform's DNS: the gateway answers for its own name, over UDP and TCP, so that a DNS
//! check has a real server to ask and a fault to see (the gateway's `down` fault closes its
//! HTTP listener, not this one; a stopped gateway stops both).
//!
//! Authoritative for one name: `A` (and `AAAA`) of it are the gateway's address, any other type
//! of it is an empty answer, any other name under its parent is NXDOMAIN, and names elsewhere are
//! REFUSED (it is no resolver). Messages are read and written by hickory-proto.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType, rdata};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

/// What the gateway answers DNS for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsSettings {
    pub listen: SocketAddr,
    /// The gateway's name, e.g. `gateway.platform.test`.
    pub name: String,
    /// The time to live of its answers, in seconds.
    pub ttl: u32,
}

struct Zone {
    name: Name,
    parent: Name,
    address: IpAddr,
    ttl: u32,
}

/// A DNS server bound to its address, not yet answering.
pub struct DnsServer {
    zone: Arc<Zone>,
    udp: UdpSocket,
    tcp: TcpListener,
}

impl DnsServer {
    /// Binds UDP and TCP on `settings.listen` (port 0: the same free port for both); `address`
    /// is what the name resolves to.
    pub async fn bind(settings: &DnsSettings, address: IpAddr) -> std::io::Result<DnsServer> {
        let name = Name::from_ascii(&settings.name)
            .map_err(|e| std::io::Error::other(format!("dns: {:?}: {e}", settings.name)))?
            .to_lowercase();
        let udp = UdpSocket::bind(settings.listen).await?;
        let tcp = TcpListener::bind(udp.local_addr()?).await?;
        Ok(DnsServer {
            zone: Arc::new(Zone {
                parent: name.base_name(),
                name,
                address,
                ttl: settings.ttl,
            }),
            udp,
            tcp,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Answers until `stop`.
    pub async fn serve(self, stop: watch::Receiver<bool>) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr()?, "dns listening");
        let DnsServer { zone, udp, tcp } = self;
        let udp_zone = zone.clone();
        // Ended with the TCP loop below.
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                if let Some(reply) = answer(&udp_zone, &buf[..n]) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
        });
        let stopped = stopped(stop);
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                r = tcp.accept() => {
                    let Ok((mut conn, _)) = r else { continue };
                    let zone = zone.clone();
                    tokio::spawn(async move {
                        // A message is its two-byte length, then the message.
                        loop {
                            let mut len = [0u8; 2];
                            if conn.read_exact(&mut len).await.is_err() {
                                break;
                            }
                            let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                            if conn.read_exact(&mut query).await.is_err() {
                                break;
                            }
                            let Some(reply) = answer(&zone, &query) else { break };
                            let Ok(n) = u16::try_from(reply.len()) else { break };
                            if conn.write_all(&n.to_be_bytes()).await.is_err()
                                || conn.write_all(&reply).await.is_err()
                            {
                                break;
                            }
                        }
                    });
                }
                () = &mut stopped => break,
            }
        }
        udp_task.abort();
        Ok(())
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The reply to a query; `None` for bytes that are not a query (nothing is sent back).
fn answer(zone: &Zone, bytes: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(bytes).ok()?;
    if query.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    let Some(q) = query.queries.first().cloned() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply.to_vec().ok();
    };
    reply.add_query(q.clone());
    if query.metadata.op_code != OpCode::Query {
        reply.metadata.response_code = ResponseCode::NotImp;
        return reply.to_vec().ok();
    }
    let asked = q.name().to_lowercase();
    if asked == zone.name {
        reply.metadata.authoritative = true;
        let data = match (q.query_type(), zone.address) {
            (RecordType::A, IpAddr::V4(a)) => Some(RData::A(rdata::A(a))),
            (RecordType::AAAA, IpAddr::V6(a)) => Some(RData::AAAA(rdata::AAAA(a))),
            _ => None,
        };
        if let Some(data) = data {
            reply.add_answer(Record::from_rdata(asked, zone.ttl, data));
        }
    } else if zone.parent.zone_of(&asked) {
        reply.metadata.authoritative = true;
        reply.metadata.response_code = ResponseCode::NXDomain;
    } else {
        reply.metadata.response_code = ResponseCode::Refused;
    }
    reply.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn zone() -> Zone {
        let name = Name::from_ascii("gateway.platform.test.").unwrap();
        Zone {
            parent: name.base_name(),
            name,
            address: IpAddr::from([127, 0, 0, 1]),
            ttl: 60,
        }
    }

    fn ask(name: &str, t: RecordType) -> Message {
        let mut m = Message::query();
        m.metadata.id = 7;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        Message::from_vec(&answer(&zone(), &m.to_vec().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn the_gateway_name_resolves_and_nothing_else_does() {
        let r = ask("Gateway.Platform.Test.", RecordType::A);
        assert_eq!(
            (r.metadata.id, r.metadata.response_code),
            (7, ResponseCode::NoError)
        );
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].ttl, 60);
        let r = ask("gateway.platform.test.", RecordType::MX);
        assert_eq!(
            (r.metadata.response_code, r.answers.len()),
            (ResponseCode::NoError, 0)
        );
        let r = ask("nope.platform.test.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        let r = ask("example.com.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert_eq!(answer(&zone(), b"not dns"), None);
    }
}
