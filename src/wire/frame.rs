//! Frames as they leave: a probe's IPv4 or IPv6 packet with room for an
//! Ethernet header, and the template that writes it with no allocation.

use std::net::{IpAddr, Ipv4Addr};

use crate::wire::checksum::{addr_sum, fold, sum_words};
use crate::wire::{ProbeFields, ProbeTemplate};

/// A MAC address.
pub type Mac = [u8; 6];

/// The longest probe: an IPv6 header and a UDP datagram with the longest
/// payload of `scanners/udp/` (TCP probes take at most 140 bytes).
pub const PACKET_MAX: usize = 340;
/// The longest UDP payload a probe carries: what is left of
/// [`PACKET_MAX`] after the IPv6 and UDP headers.
pub const PAYLOAD_MAX: usize = PACKET_MAX - 40 - 8;
/// An Ethernet header: destination MAC, source MAC, EtherType.
pub const ETH_HLEN: usize = 14;
/// The longest frame: an Ethernet header and the longest probe.
pub const FRAME_MAX: usize = ETH_HLEN + PACKET_MAX;
/// One probe ready to leave: an IPv4 packet, with room for an Ethernet
/// header in front of it, and where it goes.
#[derive(Clone, Copy)]
pub struct Frame {
    /// `bytes[ETH_HLEN..ETH_HLEN + len]` is the IPv4 packet;
    /// `bytes[..ETH_HLEN]` its Ethernet header when `link` is set.
    pub bytes: [u8; FRAME_MAX],
    /// The IPv4 packet's length.
    pub len: usize,
    pub dst: IpAddr,
    /// The interface index this frame leaves through at layer 2 (with the
    /// header in front), or 0: through the kernel's IP layer.
    pub link: u32,
}

impl Frame {
    pub const EMPTY: Frame = Frame {
        bytes: [0; FRAME_MAX],
        len: 0,
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        link: 0,
    };

    /// The IPv4 packet (what `--pcap` records).
    pub fn packet(&self) -> &[u8] {
        &self.bytes[ETH_HLEN..ETH_HLEN + self.len]
    }

    /// The IPv4 packet, to fill in.
    pub fn packet_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[ETH_HLEN..]
    }

    /// The Ethernet frame: header and packet.
    pub fn ethernet(&self) -> &[u8] {
        &self.bytes[..ETH_HLEN + self.len]
    }

    /// Sends this frame at layer 2 through interface `ifindex`, with
    /// `header` in front.
    pub fn set_link(&mut self, ifindex: u32, header: &[u8; ETH_HLEN]) {
        self.bytes[..ETH_HLEN].copy_from_slice(header);
        self.link = ifindex;
    }
}

/// The Ethernet header of a frame from `src` to `dst` carrying `ethertype`
/// (0x0800 IPv4, 0x86dd IPv6).
pub fn ethernet_header(dst: Mac, src: Mac, ethertype: u16) -> [u8; ETH_HLEN] {
    let mut h = [0u8; ETH_HLEN];
    h[..6].copy_from_slice(&dst);
    h[6..12].copy_from_slice(&src);
    h[12..].copy_from_slice(&ethertype.to_be_bytes());
    h
}

/// Writes a UDP probe (IPv4 header, UDP header, `payload`) into `out`;
/// a payload longer than a frame holds is cut (the payload files are
/// checked against [`PACKET_MAX`]).
/// `tag`: the IPv4 identification (16 bits) or the IPv6 flow label (20).
pub fn write_udp(p: &ProbeFields, tag: u32, payload: &[u8], out: &mut Frame) {
    let mut v = Vec::with_capacity(28 + payload.len());
    crate::wire::udp::write(p.src, p.dst, p.sport, p.dport, tag, payload, &mut v);
    let n = v.len().min(PACKET_MAX);
    out.packet_mut()[..n].copy_from_slice(&v[..n]);
    out.len = n;
    out.dst = p.dst;
}

/// The wire bytes of one technique's probe, patched per probe: addresses,
/// ports, sequence and acknowledgment numbers, IP id, and both checksums
/// from sums precomputed over the fields that never change. No allocation.
#[derive(Clone)]
pub struct FastTemplate {
    bytes: [u8; PACKET_MAX],
    len: usize,
    /// Where the TCP header starts (the IPv4 header's length).
    tcp: usize,
    /// One's complement sums of the constant words: the IPv4 header
    /// without id, checksum and addresses; the TCP header without ports,
    /// numbers and checksum, plus the pseudo header's protocol and length.
    ip_sum: u32,
    tcp_sum: u32,
}

impl FastTemplate {
    /// From the reference template ([`ProbeTemplate`]).
    pub fn new(t: &ProbeTemplate) -> FastTemplate {
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let zero = ProbeFields {
            src: unspecified,
            dst: unspecified,
            sport: 0,
            dport: 0,
            seq: 0,
            ack: 0,
        };
        let mut v = Vec::new();
        t.write(&zero, 0, &mut v);
        assert!(
            v.len() <= PACKET_MAX && v.len() >= 40,
            "probe template size"
        );
        let tcp = usize::from(v[0] & 0x0f) * 4;
        let mut bytes = [0u8; PACKET_MAX];
        bytes[..v.len()].copy_from_slice(&v);
        // Zero the variable fields: ip id, ip checksum, tcp checksum (the
        // addresses, ports and numbers are zero already).
        bytes[4..6].fill(0);
        bytes[10..12].fill(0);
        bytes[tcp + 16..tcp + 18].fill(0);
        let tcp_len = (v.len() - tcp) as u32;
        FastTemplate {
            bytes,
            len: v.len(),
            tcp,
            ip_sum: sum_words(&bytes[..tcp]),
            tcp_sum: sum_words(&bytes[tcp..v.len()]) + u32::from(bytes[9]) + tcp_len,
        }
    }

    /// Writes the probe for `p` into `out` (the IP packet; the Ethernet
    /// header is the next hop's business). An IPv6 destination gets the
    /// same TCP header behind a fixed IPv6 header; the pseudo-header sums
    /// alike but for the addresses (RFC 8200 8.1).
    pub fn write(&self, p: &ProbeFields, ip_id: u16, out: &mut Frame) {
        let b = out.packet_mut();
        let addrs = addr_sum(p.src) + addr_sum(p.dst);
        let (t, len) = if p.dst.is_ipv6() {
            let tcp_len = self.len - self.tcp;
            b[..4].copy_from_slice(&[0x60, 0, 0, 0]);
            b[4..6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
            b[6..8].copy_from_slice(&[6, self.bytes[8]]);
            b[8..24].copy_from_slice(&crate::wire::v6(p.src).octets());
            b[24..40].copy_from_slice(&crate::wire::v6(p.dst).octets());
            b[40..40 + tcp_len].copy_from_slice(&self.bytes[self.tcp..self.len]);
            (40, 40 + tcp_len)
        } else {
            b[..self.len].copy_from_slice(&self.bytes[..self.len]);
            b[4..6].copy_from_slice(&ip_id.to_be_bytes());
            b[12..16].copy_from_slice(&crate::wire::v4(p.src).octets());
            b[16..20].copy_from_slice(&crate::wire::v4(p.dst).octets());
            let ip = fold(self.ip_sum + u32::from(ip_id) + addrs);
            b[10..12].copy_from_slice(&ip.to_be_bytes());
            (self.tcp, self.len)
        };
        b[t..t + 2].copy_from_slice(&p.sport.to_be_bytes());
        b[t + 2..t + 4].copy_from_slice(&p.dport.to_be_bytes());
        b[t + 4..t + 8].copy_from_slice(&p.seq.to_be_bytes());
        b[t + 8..t + 12].copy_from_slice(&p.ack.to_be_bytes());
        let numbers = (p.seq >> 16) + (p.seq & 0xffff) + (p.ack >> 16) + (p.ack & 0xffff);
        let sum = self.tcp_sum + addrs + u32::from(p.sport) + u32::from(p.dport) + numbers;
        b[t + 16..t + 18].copy_from_slice(&fold(sum).to_be_bytes());
        out.len = len;
        out.dst = p.dst;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random_fields(rng: &mut StdRng) -> ProbeFields {
        ProbeFields {
            src: IpAddr::V4(rng.gen::<u32>().into()),
            dst: IpAddr::V4(rng.gen::<u32>().into()),
            sport: rng.gen(),
            dport: rng.gen(),
            seq: rng.gen(),
            ack: rng.gen(),
        }
    }

    #[test]
    fn fast_template_writes_what_the_reference_template_writes() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut reference = Vec::new();
        let mut frame = Frame::EMPTY;
        // Every flag byte, so every technique a file can describe.
        for f in 0..=u8::MAX {
            let slow = ProbeTemplate::new(f);
            let fast = FastTemplate::new(&slow);
            for _ in 0..60 {
                let p = random_fields(&mut rng);
                let id = rng.gen();
                slow.write(&p, id, &mut reference);
                // Leftovers from an earlier probe must not matter.
                frame.bytes.fill(0xa5);
                fast.write(&p, id, &mut frame);
                assert_eq!(frame.packet(), &reference[..], "flags {f:#x} {p:?}");
                assert_eq!(frame.dst, p.dst);
            }
        }
    }

    #[test]
    fn layer2_frames_parse_as_ethernet_ipv4_tcp_with_valid_checksums() {
        use etherparse::{LinkHeader, NetHeaders, PacketHeaders, TransportHeader};

        let mut rng = StdRng::seed_from_u64(12);
        let ours = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
        let theirs = [0x96, 0x9f, 0x8f, 0x68, 0x58, 0xef];
        let header = ethernet_header(theirs, ours, 0x0800);
        let mut frame = Frame::EMPTY;
        for flags in 0..=u8::MAX {
            let fast = FastTemplate::new(&ProbeTemplate::new(flags));
            for _ in 0..16 {
                let p = random_fields(&mut rng);
                frame.bytes.fill(0xa5);
                fast.write(&p, rng.gen(), &mut frame);
                frame.set_link(7, &header);
                assert_eq!(frame.link, 7);
                assert_eq!(frame.ethernet().len(), 14 + frame.packet().len());
                let h = PacketHeaders::from_ethernet_slice(frame.ethernet())
                    .unwrap_or_else(|e| panic!("{e:?} {p:?}"));
                let Some(LinkHeader::Ethernet2(eth)) = &h.link else {
                    panic!("no Ethernet header: {h:?}");
                };
                assert_eq!((eth.destination, eth.source), (theirs, ours));
                assert_eq!(eth.ether_type, etherparse::EtherType::IPV4);
                let Some(NetHeaders::Ipv4(ip, _)) = &h.net else {
                    panic!("no IPv4 header: {h:?}");
                };
                assert_eq!(
                    (ip.source, ip.destination),
                    (
                        crate::wire::v4(p.src).octets(),
                        crate::wire::v4(p.dst).octets()
                    )
                );
                assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "{p:?}");
                let Some(TransportHeader::Tcp(tcp)) = &h.transport else {
                    panic!("no TCP header: {h:?}");
                };
                assert_eq!(
                    (tcp.source_port, tcp.destination_port, tcp.sequence_number),
                    (p.sport, p.dport, p.seq)
                );
                assert_eq!(tcp.fin, flags & 1 != 0);
                assert_eq!(tcp.syn, flags & 2 != 0);
                assert_eq!(
                    tcp.checksum,
                    tcp.calc_checksum_ipv4(ip, &[]).unwrap(),
                    "{p:?}"
                );
            }
        }
    }

    /// IPv6 probes: the fast template writes the reference template's
    /// bytes, whose TCP checksum verifies, and they parse back to the same
    /// fields.
    #[test]
    fn ipv6_probes_match_the_reference_and_parse_back() {
        use crate::wire::{parse_ip, Body, Packet, Parsed};
        let mut rng = StdRng::seed_from_u64(13);
        let mut reference = Vec::new();
        let mut frame = Frame::EMPTY;
        for f in 0..=u8::MAX {
            let slow = ProbeTemplate::new(f);
            let fast = FastTemplate::new(&slow);
            for _ in 0..8 {
                let p = ProbeFields {
                    src: IpAddr::V6(rng.gen::<u128>().into()),
                    dst: IpAddr::V6(rng.gen::<u128>().into()),
                    ..random_fields(&mut rng)
                };
                slow.write(&p, rng.gen(), &mut reference);
                frame.bytes.fill(0xa5);
                fast.write(&p, rng.gen(), &mut frame);
                assert_eq!(frame.packet(), &reference[..], "flags {f:#x} {p:?}");
                let ip = etherparse::Ipv6Header::from_slice(&reference).unwrap().0;
                let tcp = etherparse::TcpHeader::from_slice(&reference[40..])
                    .unwrap()
                    .0;
                assert_eq!(tcp.calc_checksum_ipv6(&ip, &[]).unwrap(), tcp.checksum);
                let Parsed::Packet(Packet {
                    src,
                    dst,
                    ttl: 64,
                    body: Body::Tcp(seg),
                }) = parse_ip(frame.packet())
                else {
                    panic!("{:02x?}", frame.packet())
                };
                assert_eq!((src, dst), (p.src, p.dst));
                assert_eq!(
                    (seg.sport, seg.dport, seg.seq, seg.ack, seg.flags),
                    (p.sport, p.dport, p.seq, p.ack, f)
                );
            }
        }
    }
}
