"""Property-based tests of event flows: a state machine of the marketplace, faults, both transports."""
