"""Selection events: vocabulary, the event type, dimension inference and logging."""
