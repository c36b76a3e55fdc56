"""Webhooks to facilities, per Standard Webhooks: signing, the address policy, the HTTP sender."""
