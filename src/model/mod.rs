pub mod ports;
pub mod services;
pub mod technique;
