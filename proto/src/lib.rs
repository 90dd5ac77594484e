//! Generated wire types of Tollgate. The `.proto` files in `proto/` are the only description
//! of the wire; this crate is generated from them at build time, hermetically.

/// `tollgate.admin.v1`: the admin API served by the control plane on port 7070.
pub mod admin {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("tollgate.admin.v1");
}

/// `tollgate.sync.v1`: snapshots and usage between the planes, port 7071.
pub mod sync {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("tollgate.sync.v1");
}

/// The encoded `FileDescriptorSet` of every Tollgate proto, for gRPC reflection and for
/// printing messages in their proto3 JSON mapping.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tollgate_descriptor.bin"));
