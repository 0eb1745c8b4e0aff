pub mod cookie;
pub mod permutation;
pub(crate) mod receiver;
pub(crate) mod scan;
pub(crate) mod sender;
pub mod timing;
pub mod tracker;
pub mod validate;
