//! Lab of network namespaces. (stub: being written)
