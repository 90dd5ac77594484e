//! Start and stop: binds the listeners, then runs the sync client, the usage reporter, the
//! admin port and the gateway until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tollgate_proto::sync::sync_service_client::SyncServiceClient;

use crate::aws_identity::AwsIdentity;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::proxy::{Egress, Shared, build_client, build_service};
use crate::server::admin::AdminService;
use crate::server::workers::{WorkerThreads, worker_count};
use crate::snapshot::SnapshotCell;
use crate::usage::{Aggregator, Recorder, run_reporter};
use crate::{server, sync};

/// Unsent usage records above which old minute windows are merged (about 10 MB).
const USAGE_CAP: usize = 50_000;

/// Runs a data plane until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    Gateway::bind(config).await?.serve(shutdown).await
}

/// A data plane with its listeners bound, not serving yet.
pub struct Gateway {
    config: Config,
    app: TcpListener,
    admin: TcpListener,
    tls: Option<TlsAcceptor>,
    /// How provider connections are made (TLS trust, egress proxy), for the workers' clients.
    egress: Egress,
    channel: sync::SyncChannel,
    shared: Arc<Shared>,
    /// Worker threads to start (each has its usage and metrics shard).
    workers: usize,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("listen", &self.app.local_addr().ok())
            .field("admin", &self.admin.local_addr().ok())
            .finish()
    }
}

impl Gateway {
    /// Validates `config`, binds both listeners and loads TLS material.
    pub async fn bind(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let app = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("--listen {}", config.listen))?;
        let admin = TcpListener::bind(config.admin_listen)
            .await
            .with_context(|| format!("--admin-listen {}", config.admin_listen))?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(server::tls::acceptor(cert, key)?),
            _ => None,
        };
        let egress = Egress::new(
            "--upstream-ca-file",
            config.upstream_ca_file.as_deref(),
            config.allow_link_local_upstreams,
        )?;
        let aws = Arc::new(AwsIdentity::from_env(&egress).map_err(anyhow::Error::msg)?);
        if aws.is_configured() {
            tracing::info!(
                "AWS connections without stored credentials use {}",
                aws.describe()
            );
        }
        let channel = sync::connect_lazy(&config)?;
        let workers = worker_count(config.workers);
        let shared = Arc::new(Shared {
            snapshots: Arc::new(SnapshotCell::empty()),
            client: build_client(&egress, config.connect_timeout()),
            aws,
            recorder: Arc::new(Recorder {
                aggregator: Arc::new(Aggregator::with_shards(USAGE_CAP, workers)),
                metrics: Arc::new(Metrics::new(workers)),
                shard: 0,
            }),
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: config.body_read_timeout(),
            first_byte_timeout: config.first_byte_timeout(),
            idle_timeout: config.idle_timeout(),
            retry_backoff: config.retry_backoff(),
        });
        Ok(Self {
            config,
            app,
            admin,
            tls,
            egress,
            channel,
            shared,
            workers,
        })
    }

    /// Address of the OpenAI-compatible API.
    pub fn listen_addr(&self) -> SocketAddr {
        self.app.local_addr().unwrap_or(self.config.listen)
    }

    /// Address of the admin port.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().unwrap_or(self.config.admin_listen)
    }

    /// The snapshot holder (tests publish hand-made snapshots through it).
    pub fn snapshots(&self) -> Arc<SnapshotCell> {
        self.shared.snapshots.clone()
    }

    /// The usage not yet reported (for tests).
    pub fn usage(&self) -> Arc<Aggregator> {
        self.shared.recorder.aggregator.clone()
    }

    /// Serves until `shutdown`; then drains requests and flushes usage.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Gateway {
            config,
            app,
            admin,
            tls,
            egress,
            channel,
            shared,
            workers: worker_threads,
        } = self;
        tracing::info!(listen = %app.local_addr()?, admin = %admin.local_addr()?, control_plane = %config.control_plane, environment = %config.environment, instance_id = %config.instance_id, "data plane starting");
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let identity = sync::Identity {
            instance_id: config.instance_id.clone(),
            environment: config.environment.clone(),
        };
        let sync_task = tokio::spawn(sync::run_sync(
            channel.clone(),
            identity,
            shared.snapshots.clone(),
            stopped(),
        ));
        let reporter = tokio::spawn(run_reporter(
            SyncServiceClient::new(channel),
            shared.recorder.aggregator.clone(),
            shared.recorder.metrics.clone(),
            config.instance_id.clone(),
            config.environment.clone(),
            stopped(),
        ));
        let draining = Arc::new(AtomicBool::new(false));
        let admin_svc = AdminService {
            snapshots: shared.snapshots.clone(),
            metrics: shared.recorder.metrics.clone(),
            draining: draining.clone(),
        };
        // The admin port keeps serving through the drain, and says it is not ready; new
        // requests are still taken for the drain delay, so load balancers see that first.
        let drain_delay = config.drain_delay();
        let shutdown = async move {
            shutdown.await;
            draining.store(true, Ordering::Relaxed);
            if !drain_delay.is_zero() {
                tracing::info!(
                    delay_ms = drain_delay.as_millis() as u64,
                    "shutting down: /readyz answers 503, still taking requests for the drain delay"
                );
                tokio::time::sleep(drain_delay).await;
            }
            tracing::info!("shutting down: no new connections, draining open requests");
        };
        let admin_task = tokio::spawn(server::serve(
            admin,
            None,
            server::Limits::default(),
            vec![server::Worker::current(admin_svc)],
            stopped(),
        ));
        let limits = config.server_limits();
        let threads =
            WorkerThreads::start(worker_threads).context("starting the worker threads")?;
        let mut workers = Vec::with_capacity(threads.handles().len());
        for (i, handle) in threads.handles().iter().enumerate() {
            // Worker 0 takes the gateway's own client and shard; the others get their own.
            let own = if i == 0 {
                shared.clone()
            } else {
                Arc::new(Shared {
                    client: build_client(&egress, config.connect_timeout()),
                    recorder: Arc::new(Recorder {
                        shard: i,
                        ..Recorder::clone(&shared.recorder)
                    }),
                    ..(*shared).clone()
                })
            };
            workers.push(server::Worker {
                handle: handle.clone(),
                service: build_service(own),
            });
        }
        server::serve(app, tls, limits, workers, shutdown).await;
        threads.stop().await;
        // Requests are drained: every meter has recorded. Now flush usage and stop the rest.
        let _ = stop_tx.send(true);
        let _ = sync_task.await;
        let _ = reporter.await;
        let _ = admin_task.await;
        tracing::info!("data plane stopped");
        Ok(())
    }
}
