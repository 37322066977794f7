# One image with all Kaa binaries: kaa-node (the default entrypoint),
# kaa-operator and kaa-device, in /usr/local/bin.
#
#   docker build -t kaa:dev --build-arg VERSION=dev --build-arg REVISION=$(git rev-parse HEAD) .
#   docker run --rm -p 8080:8080 -p 8081:8081 -p 9080:9080 kaa:dev
#   docker run --rm --entrypoint kaa-operator kaa:dev --help
#
# packaging/debian-packages.txt is the only list of Debian packages: the build
# stage installs its `build` packages through scripts/install-deps.sh, the
# runtime stage installs exactly its `runtime` packages. `make test` runs
# scripts/check-runtime-libs.sh, which checks without a container engine that
# the runtime packages cover every library the binaries load; the runtime
# stage checks it again with ldd.

# ---- web console ----------------------------------------------------------
# console/ built with the exact npm packages of its package-lock.json; the
# runtime image gets the static files only (no Node.js).
FROM node:20-bookworm-slim AS console
WORKDIR /src/console
COPY console/package.json console/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY console/index.html console/vite.config.js ./
COPY console/src ./src
RUN KAA_CONSOLE_OUT=/out ./node_modules/.bin/vite build

# ---- build ----------------------------------------------------------------
FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# The package list and the installer first, so that this layer is reused
# until the list changes.
COPY packaging/debian-packages.txt packaging/debian-packages.txt
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN sh scripts/install-deps.sh build \
	&& apt-get clean \
	&& rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" all

# ---- runtime --------------------------------------------------------------
FROM debian:12-slim
ARG DEBIAN_FRONTEND=noninteractive
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY packaging/debian-packages.txt /tmp/debian-packages.txt
RUN apt-get update \
	&& awk '$1 !~ /^#/ && $2 ~ /(^|,)runtime(,|$)/ {print $1}' /tmp/debian-packages.txt \
		| xargs --no-run-if-empty apt-get install -y --no-install-recommends \
	&& apt-get clean \
	&& rm -rf /var/lib/apt/lists/* /tmp/debian-packages.txt

# Non-root user with a fixed numeric id (Kubernetes runAsNonRoot can verify a
# numeric USER). kaa-node's default stores are ./data/*.db, relative to the
# working directory /var/lib/kaa.
RUN groupadd --system --gid 65532 kaa \
	&& useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/kaa \
		--no-create-home --shell /usr/sbin/nologin kaa \
	&& install -d -o 65532 -g 65532 -m 0750 /var/lib/kaa /var/lib/kaa/data

COPY --from=build /src/build/bin/kaa-node /src/build/bin/kaa-operator \
	/src/build/bin/kaa-device /usr/local/bin/
# kaa-node's default --console-dir when BIN/../console has none
COPY --from=console /out /usr/share/kaa/console
# Fail the build if the runtime packages miss a library.
RUN for b in /usr/local/bin/kaa-node /usr/local/bin/kaa-operator /usr/local/bin/kaa-device; do \
		if ldd "$b" | grep 'not found'; then \
			echo "$b: shared libraries missing: add their packages as runtime in packaging/debian-packages.txt" >&2; \
			exit 1; \
		fi; \
	done

LABEL org.opencontainers.image.title="kaa" \
	org.opencontainers.image.description="Kaa IoT platform: kaa-node (control, operations and bootstrap services), kaa-operator (Kubernetes operator) and kaa-device (device simulator)" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.revision="${REVISION}" \
	org.opencontainers.image.created="${CREATED}" \
	org.opencontainers.image.base.name="docker.io/library/debian:12-slim"

USER 65532:65532
WORKDIR /var/lib/kaa
# control, bootstrap, operations (device WebSocket), internode
EXPOSE 8080 8081 9080 9091
ENTRYPOINT ["kaa-node"]
