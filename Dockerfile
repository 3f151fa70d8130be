# syntax=docker/dockerfile:1
# meshchat in a small image: one self-contained binary (the web client is embedded at
# build time), run as a non-root user. Dependencies are compiled in a layer of their own
# (cargo-chef), so a change to meshchat's code rebuilds only meshchat.

# Debian 12 (bookworm) in both the build and the runtime image: same glibc.
FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked
WORKDIR /app

# The dependency recipe: changes only when a Cargo.toml or Cargo.lock does.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# The same profile and package as scripts/build-release.sh, so the cached layer is reused.
RUN cargo chef cook --release --locked -p meshchat --recipe-path recipe.json
COPY . .
# The build command CI runs, defined once in that script.
RUN scripts/build-release.sh

# glibc, libgcc and CA certificates, no shell; "nonroot" is uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /app/target/release/meshchat /usr/local/bin/meshchat
USER 65532:65532
ENV HOST=0.0.0.0 \
    PORT=3000
EXPOSE 3000 3478/udp
ENTRYPOINT ["/usr/local/bin/meshchat"]
