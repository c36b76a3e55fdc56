"""Everything that talks to the outside, each satisfying a port of `orchestrator.ports`."""
