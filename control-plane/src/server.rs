//! Assembles the admin gRPC server: every service, gRPC health and reflection.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tollgate_proto::admin::{
    admin_token_service_server::AdminTokenServiceServer, ai_llm_service_server::AiLlmServiceServer,
    api_key_service_server::ApiKeyServiceServer, policy_service_server::PolicyServiceServer,
    repository_service_server::RepositoryServiceServer, stats_service_server::StatsServiceServer,
    workspace_service_server::WorkspaceServiceServer,
};

use crate::api::{self, Ctx};

/// Serves the admin API on `listener` until `shutdown` resolves, over TLS when given.
pub async fn serve_admin(
    ctx: Arc<Ctx>,
    listener: TcpListener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AiLlmServiceServer<api::ai_llm::Service>>()
        .await;
    health_reporter
        .set_serving::<WorkspaceServiceServer<api::workspace::Service>>()
        .await;
    health_reporter
        .set_serving::<RepositoryServiceServer<api::repository::Service>>()
        .await;
    health_reporter
        .set_serving::<ApiKeyServiceServer<api::api_key::Service>>()
        .await;
    health_reporter
        .set_serving::<PolicyServiceServer<api::policy::Service>>()
        .await;
    health_reporter
        .set_serving::<AdminTokenServiceServer<api::token::Service>>()
        .await;
    health_reporter
        .set_serving::<StatsServiceServer<api::stats::Service>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tollgate_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .add_service(health)
        .add_service(reflection)
        .add_service(AiLlmServiceServer::new(api::ai_llm::Service(ctx.clone())))
        .add_service(WorkspaceServiceServer::new(api::workspace::Service(
            ctx.clone(),
        )))
        .add_service(RepositoryServiceServer::new(api::repository::Service(
            ctx.clone(),
        )))
        .add_service(ApiKeyServiceServer::new(api::api_key::Service(ctx.clone())))
        .add_service(PolicyServiceServer::new(api::policy::Service(ctx.clone())))
        .add_service(AdminTokenServiceServer::new(api::token::Service(
            ctx.clone(),
        )))
        .add_service(StatsServiceServer::new(api::stats::Service(ctx)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
