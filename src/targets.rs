//! Target parsing. (stub: being written)
use std::net::Ipv4Addr;

/// Expands target tokens into addresses, minus the excluded ones.
pub fn expand_targets(_tokens: &[String], _excludes: &[String]) -> anyhow::Result<Vec<Ipv4Addr>> {
    todo!()
}

/// Reads a target list file (`-iL`, `--exclude-file`).
pub fn read_list_file(_path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    todo!()
}
