//! Port -> service name. (stub: being written)

pub struct Services;

impl Services {
    pub fn load() -> Services {
        Services
    }
    pub fn name(&self, _port: u16) -> Option<&str> {
        None
    }
}
