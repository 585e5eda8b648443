/**
 * What a million deliveries cost on AWS, from list prices (us-east-1, arm64, as published in 2025:
 * check the pricing pages before relying on them) and the figures the bench measured.
 */
const PRICE = {
  lambdaGbSecond: 0.0000133334, // arm64
  lambdaRequest: 0.2 / 1e6,
  websocketMessage: 1.0 / 1e6, // per message of up to 32 KB, first billion a month
  connectionMinute: 0.25 / 1e6,
  dynamodbReadUnit: 0.125 / 1e6, // on-demand, per read request unit
};

/** A subscription item as stored (keys, channel, id, times, version), bytes. */
const SUBSCRIPTION_ITEM_BYTES = 170;
const PAGE_SIZE = 500;

export function costPerMillion({ gbSecondsPerDelivery, cpuMicros }: { gbSecondsPerDelivery?: number; cpuMicros?: number }) {
  const deliveries = 1e6;
  // On paper when not measured: 4 invocations of 1,024 MB, each at 2,500 posts/s (its share of 10,000/s).
  const gbSeconds = (gbSecondsPerDelivery ?? 1 / 2500) * deliveries;
  // A query's read units: its items' total size in 4 KB units, halved for an eventually consistent read.
  const readUnits = (Math.ceil((PAGE_SIZE * SUBSCRIPTION_ITEM_BYTES) / 4096) / 2) * (deliveries / PAGE_SIZE);
  const invocations = deliveries / 25_000; // a 100,000-subscriber channel: 4 invocations per message
  const rows: Array<[string, string, string]> = [
    ['API Gateway messages (≤ 32 KB each)', '1,000,000', (deliveries * PRICE.websocketMessage).toFixed(2)],
    [`Lambda duration${gbSecondsPerDelivery ? ' (measured in the simulation)' : ' (on paper)'}`, `${gbSeconds.toFixed(0)} GB-s`, (gbSeconds * PRICE.lambdaGbSecond).toFixed(4)],
    ['Lambda requests', invocations.toFixed(0), (invocations * PRICE.lambdaRequest).toFixed(4)],
    ['DynamoDB reads of subscriptions (on demand)', `${readUnits.toFixed(0)} RRU`, (readUnits * PRICE.dynamodbReadUnit).toFixed(4)],
    ['API Gateway connection-minutes (1 per delivery, see note)', '1,000,000', (deliveries * PRICE.connectionMinute).toFixed(2)],
  ];
  const total = rows.reduce((sum, [, , usd]) => sum + Number(usd), 0);
  rows.push(['**total**', '', `**${total.toFixed(2)}**`]);
  const notes = [
    'Connection-minutes are paid for being connected, not per delivery: one minute per delivery is a client that receives one message a minute; a busier channel pays less per delivery.',
    'Lambda bills wall time: a worker mostly waits on the gateway round trip, so its GB-s per delivery ≈ memory ÷ (its posts per second). More concurrency per worker or fewer, busier workers lower it; CPU is not the limit' +
      (cpuMicros ? ` (${cpuMicros.toFixed(0)} µs per signed post on a busy loopback socket here, about twice that at a 30 ms round trip: ~${((2500 * 2 * cpuMicros) / 1e4).toFixed(0)} % of one vCPU at 2,500 posts/s).` : '.'),
  ];
  return { rows, notes };
}
