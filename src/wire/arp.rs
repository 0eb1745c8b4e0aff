//! ARP (RFC 826) over Ethernet for IPv4: the request that asks who holds
//! an address on the local link, and the reply that says so.

use std::net::Ipv4Addr;

use crate::wire::frame::Mac;

/// An ARP packet for Ethernet and IPv4 (without the Ethernet header).
pub const ARP_LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;

/// "Who has `target`? Tell `sender_ip` at `sender_mac`."
pub fn request(sender_mac: Mac, sender_ip: Ipv4Addr, target: Ipv4Addr) -> [u8; ARP_LEN] {
    let mut p = [0u8; ARP_LEN];
    p[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    p[2..4].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&OP_REQUEST.to_be_bytes());
    p[8..14].copy_from_slice(&sender_mac);
    p[14..18].copy_from_slice(&sender_ip.octets());
    // Target hardware address: unknown, zero.
    p[24..28].copy_from_slice(&target.octets());
    p
}

/// An ARP reply: `ip` is at `mac`, told to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpReply {
    pub ip: Ipv4Addr,
    pub mac: Mac,
    pub to: Ipv4Addr,
}

/// Parses an ARP packet (after the Ethernet header); `None` unless it is
/// an Ethernet/IPv4 reply.
pub fn parse_reply(bytes: &[u8]) -> Option<ArpReply> {
    let p: &[u8; ARP_LEN] = bytes.get(..ARP_LEN)?.try_into().ok()?;
    let be = |at: usize| u16::from_be_bytes([p[at], p[at + 1]]);
    if be(0) != HTYPE_ETHERNET || be(2) != PTYPE_IPV4 || p[4] != 6 || p[5] != 4 {
        return None;
    }
    if be(6) != OP_REPLY {
        return None;
    }
    let ip4 = |at: usize| Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3]);
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&p[8..14]);
    Some(ArpReply {
        ip: ip4(14),
        mac,
        to: ip4(24),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 2);

    /// Captured with `tshark -x -f arp` in the lab (the kernel of
    /// 10.213.1.1 asking for 10.213.1.2, and its answer), Ethernet
    /// headers cut off.
    const KERNEL_REQUEST: [u8; ARP_LEN] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0xc9, 0xe4, 0xde, 0x5c, 0x45, 0x0a,
        0xd5, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0xd5, 0x01, 0x02,
    ];
    const LINUX_REPLY: [u8; ARP_LEN] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x92, 0xb1, 0x01, 0xd7, 0x21, 0xdb, 0x0a,
        0xd5, 0x01, 0x02, 0x02, 0xc9, 0xe4, 0xde, 0x5c, 0x45, 0x0a, 0xd5, 0x01, 0x01,
    ];
    const ME: Mac = [0x02, 0xc9, 0xe4, 0xde, 0x5c, 0x45];

    #[test]
    fn our_request_is_the_kernels() {
        assert_eq!(request(ME, A, B), KERNEL_REQUEST);
    }

    #[test]
    fn a_reply_from_a_linux_host_parses() {
        assert_eq!(
            parse_reply(&LINUX_REPLY),
            Some(ArpReply {
                ip: B,
                mac: [0x92, 0xb1, 0x01, 0xd7, 0x21, 0xdb],
                to: A
            })
        );
        // Ethernet pads a reply to 60 bytes: the padding is ignored.
        let mut padded = LINUX_REPLY.to_vec();
        padded.extend_from_slice(&[0; 18]);
        assert!(parse_reply(&padded).is_some());
        // A request is not a reply; a short one is nothing.
        assert_eq!(parse_reply(&KERNEL_REQUEST), None);
        for n in 0..ARP_LEN {
            assert_eq!(parse_reply(&LINUX_REPLY[..n]), None);
        }
    }
}
