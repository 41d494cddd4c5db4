# syntax=docker/dockerfile:1
# The dcp-operator image for people with Docker: the same layout as `make image` (Node.js 20 in /nodejs,
# the app in /app, user 65532, dcp as the entrypoint, no shell). `make image` is what this repository
# builds and tests (reproducibly, without Docker); this file is not built here.
FROM node:20.20.2-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY hack ./hack
COPY test ./test
COPY bench ./bench
COPY schemas ./schemas
RUN npx tsc -p tsconfig.json
WORKDIR /app
RUN cp /src/package.json /src/package-lock.json ./ \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -f node_modules/.package-lock.json \
 && mkdir dist && cp -r /src/dist/src dist/src && find dist -type f ! -name '*.js' -delete \
 && cp -r /src/schemas schemas

# glibc, libstdc++ and libgcc from Debian 12, nothing else: the libraries node links, as make image ships.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/node /nodejs/bin/node
COPY --from=build /app /app
ENV PATH=/nodejs/bin DCP_REFUSE_ROOT=1 NODE_ENV=production
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/src/cli/main.js"]
