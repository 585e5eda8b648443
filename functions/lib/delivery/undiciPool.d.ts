// undici's Pool and request() on their own: its package index also loads fetch, WebSocket, caches and mocks, which
// more than doubles a bundle that only posts (connectionGateway.ts).
declare module 'undici/lib/dispatcher/pool.js' {
  import { Pool } from 'undici';
  export default Pool;
}

declare module 'undici/lib/api/api-request.js' {
  import { Dispatcher } from 'undici';
  export default function request(this: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
}
