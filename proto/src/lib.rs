//! Generated wire types of Tollgate. The `.proto` files in `proto/` are the only description
//! of the wire; this crate is generated from them at build time, hermetically.

/// The packages nested as prost expects (a message of one package names another's by a
/// relative path: sync's `Policy` holds admin's `PolicyRules`).
mod generated {
    pub mod tollgate {
        pub mod admin {
            pub mod v1 {
                #![allow(clippy::all, missing_docs)]
                tonic::include_proto!("tollgate.admin.v1");
            }
        }
        pub mod sync {
            pub mod v1 {
                #![allow(clippy::all, missing_docs)]
                tonic::include_proto!("tollgate.sync.v1");
            }
        }
    }
}

/// `tollgate.admin.v1`: the admin API served by the control plane on port 7070.
pub use generated::tollgate::admin::v1 as admin;
/// `tollgate.sync.v1`: snapshots and usage between the planes, port 7071.
pub use generated::tollgate::sync::v1 as sync;

/// The encoded `FileDescriptorSet` of every Tollgate proto, for gRPC reflection and for
/// printing messages in their proto3 JSON mapping.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tollgate_descriptor.bin"));
