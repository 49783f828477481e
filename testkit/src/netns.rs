//! A network namespace of its own at the far end of a veth pair, whose kernel does not answer
//! echo requests: an address that never answers ICMP, deterministically (a TEST-NET address
//! may be answered by a router's "unreachable"), or one that answers only as a responder
//! started in it says (the benchmark's icmp row). Needs root, as `ip netns` does.

use std::net::Ipv4Addr;
use std::process::Command;

pub struct Namespace {
    pub name: String,
    /// The address inside the namespace; the host's end of the pair is the one below it.
    pub peer: Ipv4Addr,
}

fn run(args: &[&str]) -> std::io::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "`{}`: {} (a namespace of its own needs root and iproute2)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Namespace {
    /// `name` for the namespace, `link` for the host's end of the pair (at most 13
    /// characters; the far end is `link` with a `p`), `net` the first three octets of the /30
    /// between them (the host .1, the peer .2). What a run killed before its end left behind
    /// under these names is removed first.
    pub fn create(name: &str, link: &str, net: [u8; 3]) -> std::io::Result<Namespace> {
        let [a, b, c] = net;
        let _ = run(&["ip", "netns", "del", name]);
        let _ = run(&["ip", "link", "del", link]);
        let far = format!("{link}p");
        let (host, peer) = (format!("{a}.{b}.{c}.1/30"), format!("{a}.{b}.{c}.2/30"));
        let ns = Namespace {
            name: name.to_owned(),
            peer: Ipv4Addr::new(a, b, c, 2),
        };
        run(&["ip", "netns", "add", name])?;
        // From here on, a failure drops `ns`, which deletes the namespace and the pair.
        let steps: [&[&str]; 8] = [
            &[
                "ip", "link", "add", link, "type", "veth", "peer", "name", &far,
            ],
            &["ip", "link", "set", &far, "netns", name],
            &["ip", "addr", "add", &host, "dev", link],
            &["ip", "link", "set", link, "up"],
            &[
                "ip", "netns", "exec", name, "ip", "addr", "add", &peer, "dev", &far,
            ],
            &["ip", "netns", "exec", name, "ip", "link", "set", &far, "up"],
            &["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
            &[
                "ip",
                "netns",
                "exec",
                name,
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all",
            ],
        ];
        for step in steps {
            run(step)?;
        }
        Ok(ns)
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // The veth pair goes with the namespace.
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}
