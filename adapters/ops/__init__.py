"""The operator API (`/ops/v1`) over the operator service (orchestrator.operations)."""
