//! Which network addresses provider traffic may reach, shared by the data plane's upstream
//! client and the control plane's validation calls (DESIGN §6): link-local and cloud
//! metadata addresses are refused unless the operator allows them, both as IP literals and
//! after DNS.

mod addr;
mod connector;
mod egress;
mod resolve;

pub use addr::{
    host_literal, is_aws_credentials_agent, is_forbidden, is_loopback_host, is_metadata_name,
};
pub use connector::{ForbiddenHost, GuardedConnector};
pub use egress::{EgressProxy, TunnelFailed};
pub use resolve::{FilteringResolver, ResolveRefused};
