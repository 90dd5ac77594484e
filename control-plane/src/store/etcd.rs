//! etcd store. (being written)
pub struct EtcdStore;
