# syntax=docker/dockerfile:1.7
#
# Tollgate images. One build of the workspace feeds every target:
#
#   docker build -t tollgate/tollgate:0.1.0 .                          # all three binaries (default)
#   docker build --target control-plane -t tollgate/control-plane .    # tollgate-control-plane only
#   docker build --target data-plane    -t tollgate/data-plane .       # tollgate-data-plane only
#   docker build --target tollgatectl   -t tollgate/tollgatectl .      # the admin CLI only
#
# The Helm chart uses the all-in-one image by default: one tag to build, push, scan and pin,
# and `kubectl exec` into a control plane finds `tollgate-control-plane reencrypt` and
# `tollgatectl` next to it. The binaries share most of their code, so the extra bytes are
# small; the per-binary targets are there for registries or policies that want the least
# in each image (the chart takes them through controlPlane.image / dataPlane.image).

ARG RUST_VERSION=1.90
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
# protoc: the etcd-client crate's build script compiles etcd's protos with it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target dir between builds; the binaries are copied
# out of the cache mount into /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        -p tollgate-control-plane -p tollgate-data-plane -p tollgate-sdk --bins \
    && mkdir -p /out \
    && cp target/release/tollgate-control-plane target/release/tollgate-data-plane \
          target/release/tollgatectl /out/

# distroless/cc: glibc, libgcc, CA certificates, tzdata, no shell; "nonroot" is uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="Tollgate" \
      org.opencontainers.image.description="Tollgate AI gateway" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
WORKDIR /home/nonroot
# Admin gRPC, sync gRPC, gateway, data-plane admin (/healthz /readyz /metrics).
EXPOSE 7070 7071 8080 8081

FROM runtime AS control-plane
COPY --from=builder /out/tollgate-control-plane /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/tollgate-control-plane"]
CMD ["serve", "--help"]

FROM runtime AS data-plane
COPY --from=builder /out/tollgate-data-plane /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/tollgate-data-plane"]

FROM runtime AS tollgatectl
COPY --from=builder /out/tollgatectl /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/tollgatectl"]

# Default target: all three binaries. No entrypoint: the chart sets each container's command.
FROM runtime AS tollgate
COPY --from=builder /out/tollgate-control-plane /out/tollgate-data-plane /out/tollgatectl /usr/local/bin/
CMD ["tollgate-control-plane", "--help"]
