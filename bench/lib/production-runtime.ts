/**
 * Loaded right after tsx (`--import tsx --import <this>`) by a bench server that runs its TypeScript through tsx
 * (the soak's servers, and every server with BENCH_RUNTIME=tsx; the bench otherwise runs compiled JavaScript,
 * lib/compiled.ts): it runs the way compiled JavaScript runs in production, without source maps. tsx turns
 * Node's source-map support on, for readable stack traces while developing; with it on, Node also reads and keeps
 * the source map of every package that ships one (node-redis' alone, with its TypeScript sources, is about 4 MB
 * of heap), which a deployment running `node server.js` never holds. That heap is marked at every full
 * collection, on the core the servers share, and showed in the example's p99. Every contestant runs this way alike.
 */
process.setSourceMapsEnabled(false);
