"""Notification adapters: where deliveries go (a spool folder, SMTP, HTTP gateways) and the
broker that carries events from the relay to the workers."""
