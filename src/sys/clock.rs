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

/// `secs` since the epoch in UTC as ISO 8601 (`2026-12-02T01:39:56Z`).
pub fn iso8601_utc(secs: u64) -> String {
    let t = secs as libc::time_t;
    // SAFETY: tm is plain data that gmtime_r fills; both live for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: t and tm are valid for the call.
    if unsafe { libc::gmtime_r(&t, &mut tm) }.is_null() {
        return secs.to_string();
    }
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_is_utc() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(1_796_175_596), "2026-12-02T01:39:56Z");
    }

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
