//! The portable packet path (`--io portable`), built on pnet alone: its
//! transport channel sends whole IPv4 packets (layer 3, header included)
//! and its datalink channel captures IPv4 packets (layer 3: from the IP
//! header on). One system call per packet each way and no kernel filter,
//! so it is slower than [`crate::io::ring`], but it needs nothing beyond a raw
//! socket and a packet socket. It is also the fallback when the fast path
//! cannot be set up. The capture socket is made here (a large buffer, our
//! own packets ignored) and handed to pnet, which binds and reads it.

use std::io;
use std::time::Duration;

use pnet::datalink::{self, Channel, ChannelType, DataLinkReceiver, NetworkInterface};
use pnet::packet::ip::IpNextHeaderProtocol;
use pnet::packet::ipv4::Ipv4Packet;
use pnet::transport::{transport_channel, TransportChannelType, TransportSender};

use crate::io::socket::{bind_to_device, open_error};
use crate::wire::frame::Frame;

const ETH_P_IP: u16 = libc::ETH_P_IP as u16;
/// IPPROTO_RAW: a send-only raw socket, so no copy of incoming traffic
/// queues up on it unread.
const IPPROTO_RAW: u8 = 255;

pub struct PortableSender {
    tx: TransportSender,
}

impl PortableSender {
    pub fn open(device: Option<&str>) -> anyhow::Result<PortableSender> {
        let (tx, _rx) = transport_channel(
            16,
            TransportChannelType::Layer3(IpNextHeaderProtocol::new(IPPROTO_RAW)),
        )
        .map_err(|e| open_error("raw send", e))?;
        if let Some(dev) = device {
            bind_to_device(tx.socket.fd, dev)?;
        }
        Ok(PortableSender { tx })
    }

    /// One packet per call; the same contract as
    /// `rawsock::RawSender::send_many`.
    pub fn send_many(&mut self, frames: &[Frame]) -> io::Result<usize> {
        let Some(f) = frames.first() else {
            return Ok(0);
        };
        if f.dst.is_ipv6() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the portable path (--io portable) sends IPv4 only; scan IPv6 with --io fast",
            ));
        }
        let packet = Ipv4Packet::new(f.packet()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "probe shorter than an IPv4 header",
            )
        })?;
        self.tx.send_to(packet, f.dst)?;
        Ok(1)
    }
}

pub struct PortableCapture {
    rx: Box<dyn DataLinkReceiver>,
}

impl PortableCapture {
    /// Captures IPv4 on interface `ifindex` (0: every interface); a read
    /// waits at most `poll`.
    pub fn open(ifindex: u32, poll: Duration) -> anyhow::Result<PortableCapture> {
        let iface = if ifindex == 0 {
            NetworkInterface {
                name: "any".into(),
                description: String::new(),
                index: 0,
                mac: None,
                ips: Vec::new(),
                flags: 0,
            }
        } else {
            datalink::interfaces()
                .into_iter()
                .find(|i| i.index == ifindex)
                .ok_or_else(|| anyhow::anyhow!("no interface with index {ifindex} to capture on"))?
        };
        let config = datalink::Config {
            channel_type: ChannelType::Layer3(ETH_P_IP),
            read_timeout: Some(poll),
            read_buffer_size: 65536,
            write_buffer_size: 64,
            promiscuous: false,
            socket_fd: capture_socket()?,
            ..datalink::Config::default()
        };
        match datalink::channel(&iface, config) {
            Ok(Channel::Ethernet(_tx, rx)) => Ok(PortableCapture { rx }),
            Ok(_) => Err(anyhow::anyhow!("pnet returned an unknown channel type")),
            Err(e) => Err(open_error("packet capture", e)),
        }
    }

    /// Waits up to the poll interval for one packet and passes it on.
    pub fn read<F: FnMut(&[u8])>(&mut self, _timeout: Duration, mut each: F) -> io::Result<usize> {
        match self.rx.next() {
            Ok(p) => {
                each(p);
                Ok(1)
            }
            Err(e) => match e.kind() {
                io::ErrorKind::TimedOut
                | io::ErrorKind::WouldBlock
                | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            },
        }
    }
}

/// The socket pnet captures on, with what pnet does not set: a receive
/// buffer of 16 MiB (the default one, about 200 KiB, overflows at full
/// speed and costs retransmissions) and `PACKET_IGNORE_OUTGOING`, so that
/// our own probes and, on `lo`, the copies of what is sent are not read.
/// Either option may be refused (older kernels, no CAP_NET_ADMIN): the scan
/// works without them. pnet owns (and closes) the descriptor.
fn capture_socket() -> anyhow::Result<Option<i32>> {
    use crate::sys::sockopt;
    use std::os::fd::IntoRawFd;
    let fd = sockopt::socket(
        libc::AF_PACKET,
        libc::SOCK_DGRAM,
        libc::c_int::from(ETH_P_IP.to_be()),
    )
    .map_err(|e| open_error("packet capture", e))?;
    let _ = crate::io::ring::ignore_outgoing(&fd);
    let _ = sockopt::grow_receive_buffer(&fd, 16 << 20);
    Ok(Some(fd.into_raw_fd()))
}
