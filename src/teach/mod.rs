pub mod explain;
pub mod findings;
pub mod portnotes;
