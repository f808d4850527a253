# One image for every streamgauge service; the command picks the service
# (streamgauge ingest | aggregate | archive | backfill | start ...).
FROM node:24-slim AS deps
WORKDIR /app
RUN corepack enable
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY packages/core/package.json packages/core/
COPY packages/redis/package.json packages/redis/
COPY packages/redis-server/package.json packages/redis-server/
COPY packages/testkit/package.json packages/testkit/
COPY services/ingest/package.json services/ingest/
COPY services/aggregator/package.json services/aggregator/
COPY services/simulator/package.json services/simulator/
COPY services/dashboard/package.json services/dashboard/
COPY services/cli/package.json services/cli/
COPY test/package.json test/
RUN pnpm install --frozen-lockfile --prod --filter @streamgauge/cli...

FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production DATA_DIR=/data
COPY --from=deps /app /app
COPY packages packages
COPY services services
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8080
# Node 24 runs the TypeScript sources directly (type stripping): no build step.
ENTRYPOINT ["node", "services/cli/src/main.ts"]
CMD ["ingest"]
