"""MQTT: the alarm contract's topics and payloads, the publisher that empties the outbox,
and the embedded broker."""
