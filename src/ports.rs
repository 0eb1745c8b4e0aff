//! Port list parsing. (stub: being written)

/// Parses `-p`: "22,80,8000-8100", "-" for 1-65535.
pub fn parse_ports(_spec: &str) -> anyhow::Result<Vec<u16>> {
    todo!()
}

/// The default port list.
pub fn default_ports() -> Vec<u16> {
    todo!()
}
