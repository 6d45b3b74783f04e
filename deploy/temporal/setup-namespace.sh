#!/bin/sh
# One-shot (temporalio/admin-tools), after the server is healthy: the billing namespace with its
# retention, and the Keyword search attributes the workflows set (AccountId, CallChannel,
# CallOutcome). Safe to run again: what exists is left alone.
set -eu
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-168h}"

tries=0
until temporal operator cluster health --address "$ADDRESS" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 90 ] || { echo "Temporal at $ADDRESS is not healthy" >&2; exit 1; }
  sleep 2
done

if temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; then
  echo "namespace $NAMESPACE exists"
else
  temporal operator namespace create --address "$ADDRESS" --namespace "$NAMESPACE" \
    --retention "$RETENTION"
  echo "namespace $NAMESPACE created (retention $RETENTION)"
fi

# A new namespace takes a moment to reach every frontend: retry the first registration.
for name in AccountId CallChannel CallOutcome; do
  tries=0
  until temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" \
      | grep -qw "$name"; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || { echo "cannot register search attribute $name" >&2; exit 1; }
    temporal operator search-attribute create --address "$ADDRESS" --namespace "$NAMESPACE" \
      --name "$name" --type Keyword >/dev/null 2>&1 || sleep 2
  done
  echo "search attribute $name (Keyword) registered"
done
