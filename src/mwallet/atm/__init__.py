"""The terminal's own logic, under any screen: what was typed or scanned, the QR image reader,
the session that redeems, pays out or reverses through the core services, and the receipt."""
