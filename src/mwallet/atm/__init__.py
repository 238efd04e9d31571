"""The atm door: arrives with its own issue; it will call the same core services."""
