//! Teaching: findings about a host (typed evidence rendered per language),
//! explain cards, port notes, the languages.

pub(crate) mod explain;
pub(crate) mod findings;
pub(crate) mod lang;
pub(crate) mod portnotes;
pub(crate) mod width;
