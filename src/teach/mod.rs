//! Teaching: findings about a host (typed evidence rendered per language),
//! explain cards, port notes, the languages.

pub mod explain;
pub mod findings;
pub mod lang;
pub mod portnotes;
