#!/bin/sh
# One-shot: register the billing search attributes (AccountId, CallChannel, CallOutcome) on the
# namespace once the server answers. Safe to run again: existing attributes are left alone.
set -eu
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"

tries=0
until temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 90 ]; then
    echo "namespace $NAMESPACE not ready at $ADDRESS" >&2
    exit 1
  fi
  sleep 2
done

for name in AccountId CallChannel CallOutcome; do
  if temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" | grep -qw "$name"; then
    echo "search attribute $name already registered"
  else
    temporal operator search-attribute create --address "$ADDRESS" --namespace "$NAMESPACE" \
      --name "$name" --type Keyword
    echo "search attribute $name registered"
  fi
done
