//! UDP payloads as data (`scanners/udp/*.toml`): for a well-known port, a
//! request of its own protocol, since most services ignore an empty
//! datagram. Each file names the specification its bytes follow, the
//! ports it is sent to, and where the probe's cookie goes: bytes of the
//! payload that the protocol's answer repeats (a DNS ID, NTP's origin
//! timestamp) are checked in the answer.

use serde::Deserialize;

use crate::error::usage;

/// Where a payload carries the cookie, and where an answer echoes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieSpot {
    /// Offset in the probe's payload.
    pub at: usize,
    /// 1 to 8 bytes.
    pub len: usize,
    /// Offset in the answer's payload where the same bytes come back, if
    /// the protocol repeats them at a fixed place.
    pub echo_at: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadFile {
    name: String,
    ports: Vec<u16>,
    spec: String,
    hex: Option<String>,
    text: Option<String>,
    cookie: Option<CookieSpot>,
}

/// One protocol's probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub name: String,
    pub ports: Vec<u16>,
    /// The specification the bytes follow.
    pub spec: String,
    pub bytes: Vec<u8>,
    pub cookie: Option<CookieSpot>,
}

/// The largest payload: what a probe frame holds after the IPv6 and UDP
/// headers.
const MAX_PAYLOAD: usize = crate::wire::frame::PAYLOAD_MAX;

impl Payload {
    pub fn from_toml(text: &str, origin: &str) -> anyhow::Result<Payload> {
        let bad = |msg: String| usage(format!("UDP payload file {origin}: {msg}"));
        let file: PayloadFile = toml::from_str(text).map_err(|e| bad(e.message().to_string()))?;
        let bytes = match (&file.hex, &file.text) {
            (Some(hex), None) => {
                let digits: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
                if !digits.len().is_multiple_of(2) || !digits.chars().all(|c| c.is_ascii_hexdigit())
                {
                    return Err(bad("'hex' must be pairs of hex digits".into()));
                }
                (0..digits.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(|e| bad(e.to_string()))?
            }
            (None, Some(text)) => text.as_bytes().to_vec(),
            _ => return Err(bad("give the bytes as one of 'hex' or 'text'".into())),
        };
        if bytes.len() > MAX_PAYLOAD {
            return Err(bad(format!("more than {MAX_PAYLOAD} bytes")));
        }
        if file.ports.is_empty() {
            return Err(bad("'ports' is empty".into()));
        }
        if let Some(c) = file.cookie {
            if !(1..=8).contains(&c.len) || c.at + c.len > bytes.len() {
                return Err(bad(
                    "'cookie' must name 1 to 8 bytes inside the payload".into()
                ));
            }
        }
        Ok(Payload {
            name: file.name,
            ports: file.ports,
            spec: file.spec,
            bytes,
            cookie: file.cookie,
        })
    }

    /// The payload with `cookie` (8 secret bytes) in its cookie spot.
    pub fn with_cookie(&self, cookie: [u8; 8]) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        if let Some(c) = self.cookie {
            bytes[c.at..c.at + c.len].copy_from_slice(&cookie[..c.len]);
        }
        bytes
    }

    /// Does an answer's payload (its first bytes, `head`) repeat the
    /// cookie where the protocol says it does? True where it says nothing.
    pub fn echo_fits(&self, head: &[u8], cookie: [u8; 8]) -> bool {
        match self.cookie {
            Some(CookieSpot {
                len,
                echo_at: Some(at),
                ..
            }) => head.get(at..at + len) == Some(&cookie[..len]),
            _ => true,
        }
    }
}

pub const BUILTIN_FILES: [(&str, &str); 9] = [
    ("dns.toml", include_str!("../../scanners/udp/dns.toml")),
    ("ntp.toml", include_str!("../../scanners/udp/ntp.toml")),
    ("snmp.toml", include_str!("../../scanners/udp/snmp.toml")),
    (
        "netbios-ns.toml",
        include_str!("../../scanners/udp/netbios-ns.toml"),
    ),
    ("dhcp.toml", include_str!("../../scanners/udp/dhcp.toml")),
    ("tftp.toml", include_str!("../../scanners/udp/tftp.toml")),
    (
        "portmapper.toml",
        include_str!("../../scanners/udp/portmapper.toml"),
    ),
    (
        "isakmp.toml",
        include_str!("../../scanners/udp/isakmp.toml"),
    ),
    ("ssdp.toml", include_str!("../../scanners/udp/ssdp.toml")),
];

/// Every built-in payload, and which port gets which.
#[derive(Debug, Clone)]
pub struct Payloads {
    all: Vec<Payload>,
    /// Port -> index in `all`, or `NONE`.
    by_port: Vec<u8>,
}

const NONE: u8 = u8::MAX;

impl Payloads {
    pub fn builtin() -> Payloads {
        let all: Vec<Payload> = BUILTIN_FILES
            .iter()
            .map(|(file, text)| {
                // The files are validated by the test suite.
                Payload::from_toml(text, file).expect("built-in UDP payloads are valid")
            })
            .collect();
        let mut by_port = vec![NONE; 1 << 16];
        for (i, p) in all.iter().enumerate() {
            for &port in &p.ports {
                by_port[usize::from(port)] = i as u8;
            }
        }
        Payloads { all, by_port }
    }

    /// The payload sent to `port`; `None`: an empty datagram.
    pub fn for_port(&self, port: u16) -> Option<&Payload> {
        match self.by_port[usize::from(port)] {
            NONE => None,
            i => self.all.get(usize::from(i)),
        }
    }

    /// The bytes a probe to `port` carries with `cookie`.
    pub fn probe(&self, port: u16, cookie: [u8; 8]) -> Vec<u8> {
        self.for_port(port)
            .map_or_else(Vec::new, |p| p.with_cookie(cookie))
    }

    pub fn all(&self) -> &[Payload] {
        &self.all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each payload's bytes, written out by hand from its specification.
    #[test]
    fn every_payload_is_its_specifications_bytes() {
        let p = Payloads::builtin();
        let bytes = |port: u16| p.for_port(port).unwrap().bytes.clone();
        // RFC 1035: ID 0, RD, one question: root, NS, IN.
        assert_eq!(
            bytes(53),
            [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]
        );
        assert_eq!(bytes(5353), bytes(53));
        // RFC 5905: 48 bytes, LI 0 VN 4 mode 3.
        let ntp = bytes(123);
        assert_eq!(ntp.len(), 48);
        assert_eq!(ntp[0], 0x23);
        assert!(ntp[1..].iter().all(|&b| b == 0));
        // SNMPv2c GetRequest, community public, sysDescr.0.
        let snmp = bytes(161);
        assert_eq!(snmp.len(), 43);
        assert_eq!(&snmp[..2], [0x30, 41]);
        assert_eq!(&snmp[2..5], [2, 1, 1], "version 2c is 1");
        assert_eq!(&snmp[5..13], b"\x04\x06public");
        assert_eq!(snmp[13], 0xa0, "GetRequest-PDU");
        assert_eq!(
            &snmp[33..41],
            [0x2b, 6, 1, 2, 1, 1, 1, 0],
            "1.3.6.1.2.1.1.1.0"
        );
        // NetBIOS node status: "*" as CK + 30 A, type 0x21.
        let nb = bytes(137);
        assert_eq!(nb.len(), 50);
        assert_eq!(nb[12], 32);
        assert_eq!(&nb[13..15], b"CK");
        assert!(nb[15..45].iter().all(|&b| b == b'A'));
        assert_eq!(&nb[46..], [0, 0x21, 0, 1]);
        // DHCPINFORM: 236 fixed bytes, the magic cookie, option 53 = 8, end.
        let dhcp = bytes(67);
        assert_eq!(dhcp.len(), 244);
        assert_eq!(&dhcp[..4], [1, 1, 6, 0]);
        assert_eq!(&dhcp[10..12], [0x80, 0], "BROADCAST");
        assert_eq!(&dhcp[236..], [99, 130, 83, 99, 53, 1, 8, 255]);
        // TFTP RRQ.
        assert_eq!(bytes(69), b"\0\x01flagscan-probe\0octet\0");
        // RPC CALL to program 100000 version 2 procedure 0.
        let rpc = bytes(111);
        assert_eq!(rpc.len(), 40);
        assert_eq!(
            &rpc[4..24],
            [0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0x86, 0xa0, 0, 0, 0, 2, 0, 0, 0, 0]
        );
        // ISAKMP header: version 1.0, Main Mode, length 28.
        let ike = bytes(500);
        assert_eq!(ike.len(), 28);
        assert_eq!(&ike[16..20], [0, 0x10, 2, 0]);
        assert_eq!(&ike[24..], [0, 0, 0, 28]);
        assert!(String::from_utf8(bytes(1900))
            .unwrap()
            .starts_with("M-SEARCH * HTTP/1.1\r\n"));
        assert!(p.for_port(7).is_none(), "others get an empty datagram");
        for payload in p.all() {
            assert!(
                payload.spec.contains("RFC") || payload.spec.contains("UPnP"),
                "{}",
                payload.name
            );
        }
    }

    #[test]
    fn the_cookie_goes_where_the_answer_repeats_it() {
        let p = Payloads::builtin();
        let c = [1, 2, 3, 4, 5, 6, 7, 8];
        let dns = p.for_port(53).unwrap();
        let probe = dns.with_cookie(c);
        assert_eq!(&probe[..2], [1, 2]);
        let mut answer = probe.clone();
        answer[2] = 0x81;
        assert!(dns.echo_fits(&answer, c));
        answer[1] ^= 1;
        assert!(!dns.echo_fits(&answer, c), "a wrong DNS ID");
        assert!(!dns.echo_fits(&[], c), "too short to hold it");
        let ntp = p.for_port(123).unwrap();
        let mut reply = [0u8; 32];
        reply[24..32].copy_from_slice(&c);
        assert!(ntp.echo_fits(&reply, c));
        assert_eq!(&ntp.with_cookie(c)[40..48], c);
        // SNMP: carried, not checked in the answer.
        assert_eq!(
            &p.for_port(161).unwrap().with_cookie(c)[17..21],
            [0, 1, 2, 3]
        );
        assert!(p.for_port(161).unwrap().echo_fits(&[], c));
    }

    #[test]
    fn bad_files_are_refused_with_their_name() {
        for (text, what) in [
            ("name='x'\nports=[1]\nspec='s'\nhex='0'", "pairs"),
            ("name='x'\nports=[1]\nspec='s'", "'hex' or 'text'"),
            ("name='x'\nports=[]\nspec='s'\ntext='a'", "'ports'"),
            (
                "name='x'\nports=[1]\nspec='s'\ntext='ab'\ncookie={at=1,len=2}",
                "inside",
            ),
        ] {
            let e = Payload::from_toml(text, "t.toml").unwrap_err();
            let e = format!("{e:#}");
            assert!(e.contains("t.toml") && e.contains(what), "{e}");
        }
    }
}
