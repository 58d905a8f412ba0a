# syntax=docker/dockerfile:1
#
# Orcastra's image: the `orcastra` CLI, `orcastra-orchestrator` and `orcastra-worker`, with the
# SQL migrations and the example templates.
#
#   docker build -t orcastra .
#   docker run --rm orcastra                      # orcastra --help
#
# See docker-compose.yml for PostgreSQL, migrations, an orchestrator and a worker together, and
# deploy/kubernetes/ (docs/operations.md) for Kubernetes. Settings: flags, ORCASTRA_* variables or an
# orcastra.yaml named by ORCASTRA_CONFIG (docs/configuration.md).
# Keep `.build/` out of the build context (a .dockerignore with `.build/` does it): the host's
# build folder is large and must not reach the image.

# ---- build -------------------------------------------------------------------------------------
# Needs a Swift 6.x toolchain: the package is swift-tools-version 6.1 and compiles in the Swift 6
# language mode (strict concurrency checking). 6.1 or newer; 6.2 works the same way.
FROM swift:6.1-bookworm AS build

# libpq headers and pkg-config file for the CLibPQ system library target; zlib headers for
# compress-nio (`orcastra prune --archive`; the runtime's zlib1g is in every Debian image).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev pkg-config zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# The manifest and every target it declares (test targets and the example worker included:
# SwiftPM checks that every declared target's folder exists even when only some products are
# built). Package.resolved is optional; the bracket makes the pattern match nothing rather than
# fail when it is absent.
COPY Package.swift Package.resolve[d] ./
COPY Sources ./Sources
COPY Tests ./Tests
COPY Examples ./Examples

# Only the three shipped executables are built (not the `greeting-worker` example).
# `swift build` takes one --product at a time, so it runs once per product; the three share the
# same library targets, which the first build compiles and the others reuse.
#
# --static-swift-stdlib links the Swift runtime, Foundation and Dispatch into each binary, so the
# runtime image needs no Swift toolchain and no copy of /usr/lib/swift/linux/*.so. What stays
# dynamic: glibc, libstdc++ and libpq.
#
# The .build folder lives in a cache mount so rebuilds reuse compiled dependencies; the binaries
# are copied out of it in the same step because the mount is not part of the image.
RUN --mount=type=cache,target=/build/.build \
    set -e; \
    for product in orcastra orcastra-orchestrator orcastra-worker; do \
        swift build -c release --static-swift-stdlib --product "$product"; \
    done; \
    bin="$(swift build -c release --static-swift-stdlib --show-bin-path)"; \
    mkdir -p /staging/bin; \
    for product in orcastra orcastra-orchestrator orcastra-worker; do \
        cp "$bin/$product" /staging/bin/; \
    done

# ---- run ---------------------------------------------------------------------------------------
FROM debian:bookworm-slim

# libpq5: the PostgreSQL client library. libstdc++6: needed by the statically linked Swift runtime.
# ca-certificates: TLS to a managed PostgreSQL. python3: the example templates' command steps.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 libstdc++6 ca-certificates python3 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /staging/bin/ /usr/local/bin/
# The executables look for `share/orcastra/Migrations` (and `Templates`) beside their `bin`
# folder, found through /proc/self/exe, so /usr/local/bin + /usr/local/share/orcastra works as is.
# The whole folder is copied: numbered migrations and the repeatable files in Migrations/functions/.
COPY Migrations/ /usr/local/share/orcastra/Migrations/
COPY Templates/ /usr/local/share/orcastra/Templates/

# Say where they are as well, so nothing depends on that lookup (and scripts can use the paths).
ENV ORCASTRA_MIGRATIONS_DIR=/usr/local/share/orcastra/Migrations \
    ORCASTRA_TEMPLATES_DIR=/usr/local/share/orcastra/Templates

# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it (deploy/kubernetes sets runAsUser to it).
RUN useradd --system --uid 10001 --create-home --home-dir /home/orcastra --shell /usr/sbin/nologin orcastra
USER 10001
WORKDIR /home/orcastra

CMD ["orcastra", "--help"]
