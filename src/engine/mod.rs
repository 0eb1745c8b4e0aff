pub mod cookie;
pub mod permutation;
pub mod receiver;
pub mod scan;
pub mod sender;
pub mod timing;
pub mod tracker;
pub mod validate;
