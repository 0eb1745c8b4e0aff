//! The README's "Install" steps, run as written (root): `cargo install`
//! into a scratch root instead of ~/.cargo, `setcap` on what it installed,
//! the completion script and the manual page. The installed binary then
//! scans loopback as `nobody` through its file capabilities.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// The shell lines of the README's "## Install" block, comments dropped.
fn install_lines(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## Install\n")
        .nth(1)
        .expect("the README has an Install section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the Install section starts with a sh block");
    block
        .lines()
        .map(|l| l.split(" #").next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_readme_install_steps_work_as_written() {
    if !have_root("the_readme_install_steps_work_as_written") {
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let lines = install_lines(&readme);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cargo install --locked --path .")),
        "{lines:?}"
    );
    let root = std::env::temp_dir().join(format!("flagscan-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin_dir = root.join("bin");
    let completion = root.join("flagscan.bash");
    let manifest = env!("CARGO_MANIFEST_DIR");
    // A target directory of its own: the running `cargo test` holds the
    // lock of the usual one. Kept between runs, so only the first builds.
    let target = Path::new(manifest).join("target").join("install-test");
    for line in &lines {
        let line = line
            .replace("~/.cargo/bin", bin_dir.to_str().unwrap())
            .replace(
                "/etc/bash_completion.d/flagscan",
                completion.to_str().unwrap(),
            )
            .replace("sudo ", "")
            .replace(
                "cargo install ",
                &format!("cargo install --root {} ", root.display()),
            )
            .replace(
                "flagscan completions",
                &format!("{}/flagscan completions", bin_dir.display()),
            )
            .replace(
                "flagscan man",
                &format!("{}/flagscan man", bin_dir.display()),
            );
        // `man -l -` needs man-db; the page itself is checked below.
        let line = line.replace("| man -l -", "> /dev/null");
        let out = Command::new("bash")
            .args(["-o", "pipefail", "-c", &line])
            .current_dir(manifest)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README install step failed: {line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let installed = bin_dir.join("flagscan");
    assert!(
        installed.exists(),
        "cargo install put flagscan in {}",
        bin_dir.display()
    );
    // The completion script is bash that parses and defines the function.
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p flagscan",
            completion.display()
        ))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let man = Command::new(&installed).arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH flagscan 1"), "a roff page: {page:.200}");
    // setcap from the README: the installed copy scans as nobody.
    std::fs::set_permissions(&bin_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&installed)
        .args(["-sS", "-p", &port, "-oJ", "-", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let states = parse_jsonl(&String::from_utf8_lossy(&out.stdout));
    let key = (
        "127.0.0.1".to_string(),
        port.parse().unwrap(),
        "syn".to_string(),
    );
    assert_eq!(states[&key].0, "open");
    drop(listener);
    let _ = std::fs::remove_dir_all(root);
}
