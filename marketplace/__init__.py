"""The marketplace: its events, services, gateway, configuration and command line."""
