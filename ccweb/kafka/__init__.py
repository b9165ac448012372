"""Forwarding domain events to Kafka (SPEC §4, seed 002 §3): routing (:mod:`.topics`),
the producer (:mod:`.producer`), topic provisioning (:mod:`.provision`) and metrics."""
