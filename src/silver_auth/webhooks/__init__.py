"""Webhooks: endpoints, the outbox, signing, delivery (G30-G34)."""
