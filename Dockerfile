# syntax=docker/dockerfile:1
# Spywatcher: one static binary with the dashboard embedded (build tag
# webui), on an empty base image, running as an unprivileged user.
#
#   docker build -t spywatcher --build-arg VERSION=$(git describe --tags) .
#
# Settings come from SPYWATCHER_* environment variables (README's
# configuration table; deploy/compose.yaml and deploy/helm use the same).

# 1. The dashboard: web/ built into web/dist.
FROM node:22-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci
COPY web/ ./
RUN npm run build

# 2. The binary: static (no cgo: SQLite is pure Go), time zones embedded.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY sdk/go/go.mod sdk/go/
RUN go mod download
COPY . .
COPY --from=web /src/web/dist web/dist
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -tags webui,timetzdata \
      -ldflags "-s -w -X github.com/spywatcher/spywatcher/host/internal/cli.Version=${VERSION}" \
      -o /out/spywatcher ./host/cmd/spywatcher \
 && mkdir -p /out/data

# 3. Runtime: nothing but the binary, CA certificates (Discord, webhooks)
# and an empty data directory owned by the unprivileged user.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/spywatcher /spywatcher
COPY --from=build --chown=65532:65532 /out/data /data
ENV SPYWATCHER_ADDR=0.0.0.0:8080 \
    SPYWATCHER_DATA_DIR=/data \
    SPYWATCHER_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["/spywatcher"]
CMD ["serve"]
