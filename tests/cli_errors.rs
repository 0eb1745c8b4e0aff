//! Bad input: one clear message naming the problem, exit 2, never a panic.

mod common;

use common::*;
use std::process::{Command, Output};

fn assert_usage_error(out: &Output, must_mention: &[&str], what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: exit code; stderr: {err}"
    );
    for word in must_mention {
        assert!(
            err.contains(word),
            "{what}: {err:?} should mention {word:?}"
        );
    }
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what}: {err}"
    );
    assert!(out.stdout.is_empty(), "{what}: nothing on stdout");
}

#[test]
fn every_option_rejects_bad_values_with_exit_2_naming_them() {
    let bad_technique = std::env::temp_dir().join("flagscan-bad-technique.toml");
    std::fs::write(&bad_technique, "name = \"x\"\nflags = [\"FIN\"]\n").unwrap();
    let bad = bad_technique.to_str().unwrap();
    let fin_file = concat!(env!("CARGO_MANIFEST_DIR"), "/scanners/fin.toml");
    let empty_list =
        std::env::temp_dir().join(format!("flagscan-empty-{}.txt", std::process::id()));
    std::fs::write(&empty_list, "# nothing but a comment\n").unwrap();
    let empty = empty_list.to_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["-p", "70000", "127.0.0.1"], &["70000"]),
        (&["-p", "10-5", "127.0.0.1"], &["10-5"]),
        (&["-p", "", "127.0.0.1"], &["-p"]),
        (&["10.0.0.300"], &["10.0.0.300"]),
        (&["-sQ", "127.0.0.1"], &["-sQ"]),
        (
            &["-sT", "-sS", "-p", "1", "127.0.0.1"],
            &["-sT runs on its own"],
        ),
        (
            &["-sT", "-sU", "-p", "1", "127.0.0.1"],
            &["-sT runs on its own"],
        ),
        (
            &["-sT", "--packet-trace", "-p", "1", "127.0.0.1"],
            &["-sT", "--packet-trace"],
        ),
        (
            &[
                "-sT",
                "--pcap",
                "/tmp/flagscan-never.pcap",
                "-p",
                "1",
                "127.0.0.1",
            ],
            &["-sT", "--pcap"],
        ),
        (&["--scan", "syn,bogus", "127.0.0.1"], &["bogus"]),
        (&["-e", "nosuch0", "127.0.0.1"], &["nosuch0"]),
        (&["--technique", bad, "127.0.0.1"], &[bad, "missing field"]),
        (
            &["--technique", "/nonexistent/t.toml", "127.0.0.1"],
            &["/nonexistent/t.toml"],
        ),
        (
            &["-iL", "/nonexistent/targets.txt"],
            &["/nonexistent/targets.txt"],
        ),
        (
            &["--exclude", "127.0.0.1", "127.0.0.1"],
            &["no targets left"],
        ),
        (&["-p", "22"], &["no targets"]),
        (&["--max-retries", "x", "127.0.0.1"], &["x"]),
        (
            &["--shard", "0/4", "127.0.0.1"],
            &["--shard '0/4'", "from 1"],
        ),
        (&["--shard", "5/4", "127.0.0.1"], &["5/4"]),
        (&["--shard", "1", "127.0.0.1"], &["how many shards"]),
        (
            &["--shards", "4", "--shard", "4", "127.0.0.1"],
            &["from 0 to N-1"],
        ),
        (&["--shard", "a/b", "127.0.0.1"], &["not a number"]),
        (&["--top-ports", "0", "127.0.0.1"], &["--top-ports"]),
        (
            &["--stats-every", "soon", "127.0.0.1"],
            &["--stats-every 'soon'"],
        ),
        (&["-S", "10.0.0.1-1000", "127.0.0.1"], &["-S", "1000"]),
        (&["explain", "port", "53/sctp"], &["53/sctp"]),
        (
            &["-oJ", "/nonexistent/dir/out.jsonl", "-p", "1", "127.0.0.1"],
            &["/nonexistent/dir/out.jsonl"],
        ),
        (&["--max-rate", "0", "127.0.0.1"], &["--max-rate"]),
        (
            &["--limit-budget", "-1", "127.0.0.1"],
            &["--limit-budget '-1'"],
        ),
        (
            &["--limit-budget", "abc", "127.0.0.1"],
            &["--limit-budget 'abc'"],
        ),
        (
            &["--host-timeout", "5x", "127.0.0.1"],
            &["--host-timeout '5x'"],
        ),
        (&["-Pn", "-sn", "127.0.0.1"], &["-Pn", "-sn"]),
        (&["--max-rate", "fast", "127.0.0.1"], &["fast"]),
        (&["--max-retries", "8", "127.0.0.1"], &["8"]),
        (&["--max-retries=-1", "127.0.0.1"], &["-1"]),
        (&["--seed", "x", "127.0.0.1"], &["x"]),
        (&["-T9", "127.0.0.1"], &["9"]),
        (&["--min-rate", "0", "127.0.0.1"], &["--min-rate"]),
        (
            &["--min-rate", "10", "--max-rate", "5", "127.0.0.1"],
            &["--min-rate 10", "--max-rate 5"],
        ),
        (&["-S", "10.0.0.999", "127.0.0.1"], &["10.0.0.999"]),
        (&["--lang", "fr", "127.0.0.1"], &["fr"]),
        (
            &["--exclude-file", "/nonexistent/ex.txt", "127.0.0.1"],
            &["/nonexistent/ex.txt"],
        ),
        (
            &["--pcap", "/nonexistent/dir/p.pcap", "-p", "1", "127.0.0.1"],
            &["/nonexistent/dir/p.pcap"],
        ),
        (&["-iL", empty], &["no target"]),
        (&["10.0.0.0/7"], &["10.0.0.0/7", "--yes"]),
        (&["0.0.0.0/0", "--yes"], &["0.0.0.0/0", "limit"]),
        (
            &["--exclude", "127.0.0.0/30", "127.0.0.1-3"],
            &["no targets left"],
        ),
        (&["-p", "0-", "127.0.0.1", "--scan", ""], &["technique"]),
        (&["explain", "bogus"], &["bogus"]),
        (&["explain", "port", "70000"], &["70000"]),
        (&["lab", "up", "--prefix", "bad prefix"], &["bad prefix"]),
        (
            &["--netns", "../../x", "127.0.0.1"],
            &["../../x", "not a path"],
        ),
        (&["--netns", "", "127.0.0.1"], &["namespace"]),
        (&["-o", "x", "127.0.0.1"], &["'-o'", "--help"]),
        (&["-iL", "/dev/zero"], &["/dev/zero", "longer than"]),
        (&["-iL", "/dev/urandom"], &["/dev/urandom", "not text"]),
        (
            &["--technique", "/dev/zero", "127.0.0.1"],
            &["/dev/zero", "larger than"],
        ),
        (&["0.0.0.0"], &["0.0.0.0", "no host"]),
        (
            &["--technique", fin_file, "127.0.0.1"],
            &["named 'fin'", "replaces_builtin"],
        ),
        (&["017.0.0.1"], &["017", "leading zero"]),
        (&["explain"], &["TOPIC"]),
    ];
    for (args, words) in cases {
        let out = flagscan(args);
        assert_usage_error(&out, words, &args.join(" "));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
        assert!(!err.contains("'-- "), "{args:?}: no misleading tip: {err}");
    }
    let _ = std::fs::remove_file(bad_technique);
    let _ = std::fs::remove_file(empty_list);
}

#[test]
fn missing_privileges_say_how_to_grant_them() {
    if !have_root("missing_privileges_say_how_to_grant_them") {
        return;
    }
    // Run a copy that an unprivileged user can execute wherever the
    // checkout lives, as `nobody` with no capabilities.
    let dir = std::env::temp_dir().join(format!("flagscan-nopriv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("flagscan");
    std::fs::copy(flagscan_bin(), &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&bin)
        .args(["-sS", "-p", "22", "127.0.0.1"])
        .output()
        .expect("setpriv (util-linux) runs the binary as nobody");
    assert_usage_error(
        &out,
        &[
            "CAP_NET_RAW",
            "setcap cap_net_raw,cap_net_admin+eip",
            "root",
        ],
        "as nobody",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().count(),
        1,
        "one line"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A namespace of the test's own with only loopback: nothing is routable.
struct BareNetns(&'static str);

impl Drop for BareNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", self.0]).status();
    }
}

#[test]
fn no_route_to_a_target_names_it() {
    if !have_root("no_route_to_a_target_names_it") {
        return;
    }
    let ns = BareNetns("fst-noroute");
    let _ = Command::new("ip").args(["netns", "del", ns.0]).output();
    assert!(Command::new("ip")
        .args(["netns", "add", ns.0])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("ip")
        .args(["-n", ns.0, "link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success());
    // Route lookup only: the kernel refuses before any packet exists.
    let out = flagscan(&["--netns", ns.0, "-p", "22", "10.213.99.1"]);
    assert_usage_error(&out, &["no route to 10.213.99.1"], "no route");
    let out = flagscan(&["--netns", "fst-no-such-netns", "-p", "22", "127.0.0.1"]);
    assert_usage_error(&out, &["fst-no-such-netns"], "unknown netns");
}

#[test]
fn arguments_that_are_not_utf8_are_refused_or_kept_as_paths() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let bad = OsStr::from_bytes(b"\xff");
    let run = |args: &[&OsStr]| Command::new(flagscan_bin()).args(args).output().unwrap();
    for args in [
        vec![bad],
        vec![OsStr::new("-p"), bad, OsStr::new("127.0.0.1")],
        vec![OsStr::new("--lang"), bad, OsStr::new("127.0.0.1")],
        vec![OsStr::new("explain"), bad],
    ] {
        let out = run(&args);
        assert_usage_error(&out, &["UTF-8"], &format!("{args:?}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
    if !have_root("arguments_that_are_not_utf8_are_refused_or_kept_as_paths") {
        return;
    }
    // A path need not be UTF-8: the output is written under that name.
    let dir = std::env::temp_dir().join(format!("flagscan-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut name = dir.clone().into_os_string();
    name.push(OsStr::from_bytes(b"/\xff.jsonl"));
    let out = run(&[
        OsStr::new("-p"),
        OsStr::new("1"),
        OsStr::new("127.0.0.1"),
        OsStr::new("-oJ"),
        &name,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(std::path::Path::new(&name)).unwrap();
    assert!(text.contains("\"type\":\"stats\""), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_endless_target_list_on_stdin_is_refused_in_bounded_time() {
    use std::io::Write;
    use std::process::Stdio;
    let started = std::time::Instant::now();
    let mut child = Command::new(flagscan_bin())
        .args(["-iL", "-", "-p", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Writes until flagscan stops reading (a broken pipe), at most 1 GiB.
    let feeder = std::thread::spawn(move || {
        // Loopback: were the list ever accepted, nothing leaves the machine.
        let chunk = "127.0.0.77\n".repeat(4096);
        for _ in 0..(1 << 30) / chunk.len() {
            if stdin.write_all(chunk.as_bytes()).is_err() {
                return;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = feeder.join();
    assert_usage_error(&out, &["larger than"], "yes | flagscan -iL -");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}
