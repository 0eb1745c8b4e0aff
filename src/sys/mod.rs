pub mod interrupt;
pub mod privilege;
pub mod sockopt;
pub mod teardown;
