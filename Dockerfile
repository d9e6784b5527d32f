# syntax=docker/dockerfile:1
# The Bascule operator image: a static-enough Rust binary on a distroless, non-root base.
#
#   docker build -t ghcr.io/bascule-dev/bascule:0.1.0 .
#
# The Helm chart's default image (charts/bascule/values.yaml: image.repository, tag = the chart's
# appVersion = Cargo.toml's version) refers to this build. docs/install.md explains the choices.

# ---- build ------------------------------------------------------------------------------------
# Debian bookworm, the same glibc as the runtime image below. Rust >= 1.89 (Cargo.toml's
# rust-version); pin a digest in your own builds for reproducibility.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
# Everything the manifest names (src, tests, benches) must exist for cargo to read Cargo.toml;
# .dockerignore keeps target/, .git and local caches out of the context.
COPY . .
# --locked: exactly Cargo.lock's dependency versions. The caches survive between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin bascule \
    && install -D -m 0755 target/release/bascule /out/bascule

# ---- runtime ----------------------------------------------------------------------------------
# glibc, libgcc and CA certificates, no shell, no package manager; `nonroot` is uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bascule /usr/local/bin/bascule
USER 65532:65532
# /metrics, /livez, /readyz (bascule run --http-addr).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bascule"]
CMD ["run"]
