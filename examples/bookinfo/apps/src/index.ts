// @weft/bookinfo: the BookInfo sample services, each a plain HTTP server that can be started
// in-process (tests, tools) or as the `bookinfo` command (bin/bookinfo.js, src/main.ts).
export { CallError, type CallOptions, type CallResult, call, type ProxySettings, proxyFromEnv } from './client.ts';
export { defaultUpstreams, type Upstreams, upstreamsFromEnv } from './config.ts';
export { type DetailsOptions, defaultDetails, startDetails } from './details.ts';
export { b3Headers, productpageForwardedHeaders, reviewsForwardedHeaders } from './headers.ts';
export type { LogSink } from './log.ts';
export { type Command, main, parseCommand, type ServiceName, services, UsageError, usage } from './main.ts';
export { detailsError, type ProductpageOptions, products, ratingsError, reviewsError, startProductpage } from './productpage.ts';
export { type RatingsOptions, type RatingsVersion, ratingsVersions, startRatings } from './ratings.ts';
export { type ReviewsOptions, reviewsBody, startReviews } from './reviews.ts';
export type { ListenOptions, RunningService } from './server.ts';
