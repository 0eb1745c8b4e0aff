//! The two packet I/O paths (`--io fast`, the default, and `--io portable`)
//! give the same answers: one lab host, every port, two techniques. And
//! when the kernel refuses the fast path, flagscan falls back to the
//! portable one by itself and still gives them.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::*;

const WEB: &str = "10.213.1.2";
const NOTICE: &str = "fast packet path is unavailable";

fn scan(ns: &str, io: &str, seed: &str) -> (States, serde_json::Value) {
    let json = std::env::temp_dir().join(format!(
        "flagscan-io-paths-{io}-{}.jsonl",
        std::process::id()
    ));
    // The fast path's ring is made late, so that the scan starts on the
    // interim socket and hands over to the ring mid-scan (src/io/handover.rs).
    let out = Command::new(flagscan_bin())
        .args([
            "--ring-delay-ms",
            "150",
            "--seed",
            seed,
            "--netns",
            ns,
            "--io",
            io,
            "-sS",
            "-sF",
            "-p-",
            WEB,
            "-oJ",
            json.to_str().unwrap(),
        ])
        .output()
        .expect("cannot run the flagscan binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "--io {io} failed: {stderr}");
    // On this kernel the fast path is there: no fallback notice.
    assert!(!stderr.contains(NOTICE), "--io {io}: {stderr}");
    let text = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(&json);
    let stats = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "stats")
        .unwrap_or_else(|| panic!("--io {io}: no stats record"));
    (parse_jsonl(&text), stats)
}

#[test]
fn portable_and_fast_io_agree_on_every_port() {
    if !have_root("portable_and_fast_io_agree_on_every_port") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-io");
    let ns = lab.scan_ns();
    // web drops every non-SYN on 8080, our kernel's reset included, so
    // its half-open connection outlives a scan and re-sends its SYN-ACK
    // for a minute. A second scan from the same source ports would hear
    // that SYN-ACK, rightly counted invalid; these two seeds pick source
    // port ranges apart (54768.. and 35560..).
    let (fast, fast_stats) = scan(&ns, "fast", "1");
    let (portable, portable_stats) = scan(&ns, "portable", "2");
    assert_eq!(fast.len(), 65535 * 2, "one record per port and technique");
    let differences: Vec<String> = fast
        .iter()
        .filter(|(k, v)| portable.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k:?}: fast {v:?}, portable {:?}", portable.get(k)))
        .collect();
    assert!(
        differences.is_empty() && fast.len() == portable.len(),
        "{} differences, first ones:\n{}",
        differences.len(),
        differences[..differences.len().min(20)].join("\n")
    );
    for stats in [&fast_stats, &portable_stats] {
        assert_eq!(stats["invalid"], 0, "{stats}");
        // The lab duplicates no packet, so a reply heard twice answers a
        // probe sent twice. The fast path starts on an interim socket and
        // hands over to its ring mid-scan (src/io/handover.rs): a packet
        // captured by both would show here.
        assert!(
            stats["duplicates"].as_u64() <= stats["retransmissions"].as_u64(),
            "{stats}"
        );
    }
    // The fast path sent at layer 2 (the lab is fresh, so the first probes
    // went through the IP layer while the kernel asked ARP); the portable
    // one never does.
    assert!(
        fast_stats["link_layer"].as_u64().unwrap_or(0) > 65535,
        "{fast_stats}"
    );
    assert_eq!(portable_stats.get("link_layer"), None, "{portable_stats}");
    // The lab's behaviours are there, so an empty lab cannot pass.
    let at = |p: u16, s: &str| fast[&(WEB.to_string(), p, s.to_string())].clone();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(at(22, "syn"), pair("open", "syn-ack"));
    assert_eq!(at(23, "syn"), pair("closed", "reset"));
    assert_eq!(at(111, "fin"), pair("filtered", "port-unreach"));
    assert_eq!(at(135, "syn"), pair("filtered", "no-response"));
}

/// A seccomp filter (classic BPF over `struct seccomp_data`) that makes
/// `setsockopt(fd, SOL_PACKET, PACKET_VERSION, ...)` fail with ENOPROTOOPT,
/// as on a kernel without TPACKET_V3, and lets every other system call
/// through. `None` on an architecture this test does not know.
fn refuse_tpacket_version() -> Option<Vec<libc::sock_filter>> {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return None;
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        const PACKET_VERSION: u32 = 10;
        // seccomp_data: nr at 0, arch at 4, args[i] (u64) at 16 + 8 i; the
        // low half of an argument is the first 4 bytes on little endian.
        const NR: u32 = 0;
        const ARCH_AT: u32 = 4;
        const LEVEL: u32 = 16 + 8;
        const OPTNAME: u32 = 16 + 2 * 8;
        let ld = |at: u32| libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: at,
        };
        // If equal, go on; otherwise jump `jf` ahead, to the last
        // instruction (allow).
        let next_or_allow = |k: u32, jf: u8| libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf,
            k,
        };
        let ret = |k: u32| libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k,
        };
        Some(vec![
            ld(ARCH_AT),
            next_or_allow(ARCH, 7),
            ld(NR),
            next_or_allow(libc::SYS_setsockopt as u32, 5),
            ld(LEVEL),
            next_or_allow(libc::SOL_PACKET as u32, 3),
            ld(OPTNAME),
            next_or_allow(PACKET_VERSION, 1),
            ret(libc::SECCOMP_RET_ERRNO | libc::ENOPROTOOPT as u32),
            ret(libc::SECCOMP_RET_ALLOW),
        ])
    }
}

/// A lab scan whose fast path the kernel refuses, for real: flagscan runs
/// under a seccomp filter that fails the ring's `PACKET_VERSION` option,
/// and must give the states a normal (fast) scan gives.
#[test]
fn a_refused_fast_path_falls_back_to_the_portable_one() {
    if !have_root("a_refused_fast_path_falls_back_to_the_portable_one") {
        return;
    }
    let Some(filter) = refuse_tpacket_version() else {
        eprintln!("skipped: no seccomp filter for this architecture");
        return;
    };
    let _serial = serial();
    let lab = Lab::up("fst-fb");
    let ns = lab.scan_ns();
    // Open (22, 80), closed by the kernel (21) and by a forged reset (23),
    // ICMP port-unreachable (111) and admin-prohibited (445), dropped (135).
    let ports = "21,22,23,80,111,135,445";
    let run = |filtered: bool| {
        let json = std::env::temp_dir().join(format!(
            "flagscan-io-fallback-{filtered}-{}.jsonl",
            std::process::id()
        ));
        let mut cmd = Command::new(flagscan_bin());
        cmd.args(["--netns", &ns, "-sS", "-sF", "-p", ports, WEB, "-oJ"])
            .arg(&json);
        if filtered {
            let filter = filter.clone();
            // SAFETY: between fork and exec the closure makes two prctl
            // calls on memory prepared before the fork, and allocates
            // nothing.
            unsafe {
                cmd.pre_exec(move || {
                    let prog = libc::sock_fprog {
                        len: filter.len() as u16,
                        filter: filter.as_ptr() as *mut libc::sock_filter,
                    };
                    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                        || libc::prctl(
                            libc::PR_SET_SECCOMP,
                            libc::SECCOMP_MODE_FILTER,
                            &prog as *const libc::sock_fprog,
                        ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let out = cmd.output().expect("cannot run the flagscan binary");
        let text = std::fs::read_to_string(&json).unwrap_or_default();
        let _ = std::fs::remove_file(&json);
        (out, parse_jsonl(&text))
    };
    let (normal, expected) = run(false);
    let normal_err = String::from_utf8_lossy(&normal.stderr);
    assert!(normal.status.success(), "{normal_err}");
    assert!(!normal_err.contains(NOTICE), "{normal_err}");
    let (refused, got) = run(true);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(0), "{stderr}");
    // The notice names the step the kernel refused: our filter did it.
    assert!(
        stderr.contains(NOTICE) && stderr.contains("TPACKET_V3"),
        "{stderr}"
    );
    assert_eq!(expected.len(), 7 * 2, "{expected:?}");
    assert_eq!(got, expected, "{stderr}");
    let at = |p: u16, s: &str| got[&(WEB.to_string(), p, s.to_string())].clone();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(at(22, "syn"), pair("open", "syn-ack"));
    assert_eq!(at(21, "syn"), pair("closed", "reset"));
    assert_eq!(at(135, "syn"), pair("filtered", "no-response"));
    assert_eq!(at(111, "fin"), pair("filtered", "port-unreach"));
    assert_eq!(at(445, "syn"), pair("filtered", "admin-prohibited"));
}

#[test]
fn an_unknown_io_path_is_a_usage_error() {
    let out = flagscan(&["--io", "turbo", "-p", "1", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("turbo"), "{stderr}");
    assert!(stderr.contains("portable"), "{stderr}");
}
