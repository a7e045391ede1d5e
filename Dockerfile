# syntax=docker/dockerfile:1
# The same static build CI tests (cmd/sentry-dingtalk-relay TestDockerfileBuild).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sentry-dingtalk-relay ./cmd/sentry-dingtalk-relay
# The queue's directory, owned by the nonroot user, so a fresh volume is writable.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="sentry-dingtalk-relay" \
      org.opencontainers.image.description="Sentry webhooks to DingTalk group robots" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/sentry-dingtalk-relay /sentry-dingtalk-relay
COPY --from=build --chown=65532:65532 /out/data /data
ENV RELAY_DATA_DIR=/data
VOLUME /data
# distroless nonroot: uid/gid 65532, as the Helm chart's securityContext expects.
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/sentry-dingtalk-relay"]
CMD ["serve"]
