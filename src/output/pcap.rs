//! `--pcap FILE`: every probe sent and every reply captured, in one pcap file
//! that Wireshark and tshark open.
//!
//! Packets go in as the IPv4 or IPv6 packets they are (link type RAW, 101: no
//! Ethernet header), stamped with the real clock, through one [`PcapTap`]
//! that the sender and the receiver thread share.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::error::usage;
use crate::model::probe::Time;
use crate::model::result::PcapCounts;
use crate::model::tap::{Order, Tap};
use crate::sys::files::{open_write, Existing};

/// Longest packet kept whole; IPv4 packets are never longer.
pub const SNAPLEN: u32 = 65535;

/// Which way a packet went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A probe we sent.
    Sent,
    /// A packet we captured (a reply, valid or not).
    Received,
}

/// A pcap file being written.
pub struct PcapSink<W: Write = BufWriter<PcapFile>> {
    writer: PcapWriter<W>,
    path: PathBuf,
    counts: PcapCounts,
    /// The first write error; nothing more is written after it.
    error: Option<String>,
    /// The file, if this run created it.
    created: Option<File>,
}

/// pcap-file calls every I/O error "Error reading bytes", even on write:
/// say what the system said instead.
fn describe(e: pcap_file::PcapError) -> String {
    match e {
        pcap_file::PcapError::IoError(io) => io.to_string(),
        other => other.to_string(),
    }
}

fn header() -> PcapHeader {
    PcapHeader {
        snaplen: SNAPLEN,
        datalink: DataLink::RAW,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::native(),
        ..PcapHeader::default()
    }
}

impl PcapSink {
    /// Creates (or truncates) `path` and writes the file header, so a bad
    /// path is a usage error before any probe leaves; `-` is stdout.
    pub fn create(path: &Path) -> anyhow::Result<PcapSink> {
        let fail = |e: String| usage(format!("cannot write --pcap file {}: {e}", path.display()));
        let (file, created) = if path.as_os_str() == "-" {
            let out = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| fail(e.to_string()))?;
            (File::from(out), None)
        } else {
            let opened = open_write(path, "--pcap file", Existing::Truncate, 0o644)?;
            let created = opened.created_handle();
            (opened.file, created)
        };
        let file = PcapFile { file, skip: 0 };
        let mut sink =
            PcapSink::with_writer(BufWriter::new(file), path).map_err(|e| fail(describe(e)))?;
        sink.created = created;
        Ok(sink)
    }

    /// The file, if this run created it (to be given to the sudo user).
    pub fn created_handle(&self) -> Option<File> {
        self.created.as_ref().and_then(|f| f.try_clone().ok())
    }

    /// Appends to `path` (`--resume`): a pcap file flagscan wrote keeps its
    /// header and gets the new packets after the old ones; a missing or
    /// empty file is created. Any other file is a usage error.
    pub fn append(path: &Path) -> anyhow::Result<PcapSink> {
        let fail = |e: String| {
            usage(format!(
                "cannot append to --pcap file {}: {e}",
                path.display()
            ))
        };
        let mut ours = Vec::new();
        header()
            .write_to(&mut ours)
            .map_err(|e| fail(describe(e)))?;
        let mut theirs = Vec::new();
        let read = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path);
        match read {
            Ok(f) => {
                f.take(ours.len() as u64)
                    .read_to_end(&mut theirs)
                    .map_err(|e| fail(e.to_string()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(e.to_string())),
        }
        if theirs.is_empty() {
            return PcapSink::create(path);
        }
        if theirs != ours {
            return Err(fail(
                "it is not a pcap file of raw IPv4 packets as flagscan writes them".into(),
            ));
        }
        let opened = open_write(path, "--pcap file", Existing::Append, 0o644)?;
        // The file has its header: the one the writer starts with is dropped.
        let file = PcapFile {
            file: opened.file,
            skip: ours.len(),
        };
        PcapSink::with_writer(BufWriter::new(file), path).map_err(|e| fail(describe(e)))
    }
}

/// The file under a [`PcapSink`]: when appending, the first `skip` bytes
/// written (the file header, already in the file) are dropped.
pub struct PcapFile {
    file: File,
    skip: usize,
}

impl Write for PcapFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.skip > 0 {
            let n = self.skip.min(buf.len());
            self.skip -= n;
            return Ok(n);
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl<W: Write> PcapSink<W> {
    /// A sink over any writer; `path` only names it in messages.
    pub fn with_writer(writer: W, path: &Path) -> Result<PcapSink<W>, pcap_file::PcapError> {
        Ok(PcapSink {
            writer: PcapWriter::with_header(writer, header())?,
            path: path.to_path_buf(),
            counts: PcapCounts::default(),
            error: None,
            created: None,
        })
    }

    /// Appends one IPv4 packet, stamped now.
    pub fn write(&mut self, direction: Direction, packet: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let kept = &packet[..packet.len().min(SNAPLEN as usize)];
        let orig_len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        match self
            .writer
            .write_packet(&PcapPacket::new(now, orig_len, kept))
        {
            Ok(_) => match direction {
                Direction::Sent => self.counts.sent += 1,
                Direction::Received => self.counts.received += 1,
            },
            Err(e) => self.error = Some(describe(e)),
        }
    }

    #[cfg(test)]
    pub fn counts(&self) -> PcapCounts {
        self.counts
    }

    /// Flushes and closes the file; reports the first write error, if any.
    pub fn finish(self) -> anyhow::Result<(PcapCounts, W)> {
        let path = self.path.display().to_string();
        if let Some(e) = self.error {
            anyhow::bail!("cannot write --pcap file {path}: {e}");
        }
        let mut w = self.writer.into_writer();
        w.flush()
            .map_err(|e| anyhow::anyhow!("cannot write --pcap file {path}: {e}"))?;
        Ok((self.counts, w))
    }
}

/// `--pcap` as a scan's tap: the sender and the receiver thread both
/// write, each packet whole under the lock (a poisoned lock still writes:
/// the file stays consistent).
pub struct PcapTap(Mutex<Option<PcapSink>>);

impl PcapTap {
    pub fn new(sink: PcapSink) -> PcapTap {
        PcapTap(Mutex::new(Some(sink)))
    }

    fn write(&self, direction: Direction, packet: &[u8]) {
        if let Some(sink) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            sink.write(direction, packet);
        }
    }

    /// Flushes and closes the file once the scan is over; what went in.
    pub fn finish(&self) -> anyhow::Result<PcapCounts> {
        let sink = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        match sink {
            Some(sink) => Ok(sink.finish()?.0),
            None => anyhow::bail!("the --pcap file was already closed"),
        }
    }
}

impl Tap for PcapTap {
    fn sent(&self, _at: Time, _order: &Order, packet: &[u8]) {
        self.write(Direction::Sent, packet);
    }

    fn send_failed(&self, _at: Time, _order: &Order, _error: &str) {}

    fn captured(&self, packet: &[u8]) {
        self.write(Direction::Received, packet);
    }

    fn ping_packet(&self, sent: bool, packet: &[u8]) {
        let direction = match sent {
            true => Direction::Sent,
            false => Direction::Received,
        };
        self.write(direction, packet);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;

    #[test]
    fn packets_go_in_whole_as_raw_ipv4_and_read_back() {
        let mut sink = PcapSink::with_writer(Vec::new(), Path::new("mem.pcap")).unwrap();
        let probe = [0x45u8; 40];
        let reply = [0x46u8; 56];
        sink.write(Direction::Sent, &probe);
        sink.write(Direction::Received, &reply);
        sink.write(Direction::Sent, &probe);
        assert_eq!(
            sink.counts(),
            PcapCounts {
                sent: 2,
                received: 1
            }
        );
        let (_, bytes) = sink.finish().unwrap();
        let mut reader = PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(reader.header().datalink, DataLink::RAW);
        assert_eq!(u32::from(reader.header().datalink), 101);
        let mut got = Vec::new();
        while let Some(p) = reader.next_packet() {
            let p = p.unwrap();
            assert_eq!(p.orig_len as usize, p.data.len());
            // The real clock: after 2020, not a scan-relative offset.
            assert!(p.timestamp.as_secs() > 1_577_836_800);
            got.push(p.data.into_owned());
        }
        assert_eq!(got, vec![probe.to_vec(), reply.to_vec(), probe.to_vec()]);
    }

    #[test]
    fn appending_keeps_one_header_and_every_packet() {
        let path =
            std::env::temp_dir().join(format!("flagscan-append-{}.pcap", std::process::id()));
        let _ = std::fs::remove_file(&path);
        // A missing file is created; an existing one grows.
        for len in [40usize, 44] {
            let mut sink = PcapSink::append(&path).unwrap();
            sink.write(Direction::Sent, &vec![0x45; len]);
            sink.finish().unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut reader = PcapReader::new(&bytes[..]).unwrap();
        let mut lens = Vec::new();
        while let Some(p) = reader.next_packet() {
            lens.push(p.unwrap().data.len());
        }
        assert_eq!(lens, [40, 44]);
        std::fs::write(&path, b"not a pcap file at all, longer than a header").unwrap();
        let err = PcapSink::append(&path).err().unwrap();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
        assert!(format!("{err:#}").contains("not a pcap file"), "{err:#}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_bad_path_is_a_usage_error_naming_it() {
        let path = Path::new("/nonexistent-dir/scan.pcap");
        let err = PcapSink::create(path).err().expect("cannot create there");
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
        assert!(
            format!("{err:#}").contains("/nonexistent-dir/scan.pcap"),
            "{err:#}"
        );
    }

    #[test]
    fn a_write_error_stops_writing_and_is_reported_at_the_end() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        // The header goes through BufWriter, so the error shows on a packet.
        let w = BufWriter::with_capacity(30, Full);
        let mut sink = PcapSink::with_writer(w, Path::new("full.pcap")).unwrap();
        sink.write(Direction::Sent, &[0x45; 40]);
        sink.write(Direction::Sent, &[0x45; 40]);
        assert_eq!(sink.counts().sent, 0);
        let err = sink.finish().err().unwrap();
        assert!(format!("{err}").contains("full.pcap"), "{err}");
        assert!(format!("{err}").contains("disk full"), "{err}");
    }
}
