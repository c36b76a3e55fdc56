"""The operators' console at /ops/: server-rendered pages over the operator service, no build step."""
