//! Wall-clock times as nmap prints them.

/// Seconds since the epoch (0 for a clock set before it).
pub fn epoch(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `secs` since the epoch in local time, as C's `ctime` writes it
/// (`Wed Dec  2 01:39:56 2026`, nmap's `startstr`).
pub fn ctime(secs: u64) -> String {
    let t = secs as libc::time_t;
    let mut buf = [0 as libc::c_char; 64];
    // SAFETY: ctime_r writes at most 26 bytes into a buffer of 64 and
    // reads the time_t given; both live for the call.
    let p = unsafe { libc::ctime_r(&t, buf.as_mut_ptr()) };
    if p.is_null() {
        return secs.to_string();
    }
    // SAFETY: on success the buffer holds a NUL-terminated string.
    let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    s.to_string_lossy().trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_ctime_does() {
        let s = ctime(1_796_175_596);
        // Local time: the fields' shape, not the hour, is fixed.
        let words: Vec<&str> = s.split_whitespace().collect();
        assert_eq!(words.len(), 5, "{s}");
        assert!(["Tue", "Wed", "Thu"].contains(&words[0]), "{s}");
        assert_eq!(words[4], "2026", "{s}");
    }
}
