# One image for every streamgauge service; the command picks the service
# (ingest | aggregate | archive | backfill | dashboard | start ...).
#
# The build stage assembles the CLI's runtime closure with
# infra/image/build-runtime.mjs: the workspace packages it needs (sources,
# no tests) and their production dependencies from the lockfile. The image
# holds exactly that directory. CI builds the same closure without Docker and
# runs the CLI from it (test/infra/image.test.ts).
FROM node:24-slim AS build
WORKDIR /src
RUN corepack enable
COPY . .
RUN node infra/image/build-runtime.mjs /app

FROM node:24-slim
ENV NODE_ENV=production DATA_DIR=/data LOG_FORMAT=json
WORKDIR /app
COPY --from=build /app /app
# The DuckDB warehouse (and a Redis that `start` runs itself) live under /data: mount a volume there.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# ingest, dashboard, /metrics of the aggregator, archiver and backfill.
EXPOSE 8080 8090 9464 9465 9466
# Asks the service this container runs for /readyz on its own port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "services/cli/bin/probe.js"]
# Node 24 runs the TypeScript sources directly (type stripping): no build step.
ENTRYPOINT ["node", "services/cli/bin/streamgauge.js"]
CMD ["ingest"]
