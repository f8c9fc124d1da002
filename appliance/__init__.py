"""The Sluice appliance: settings, the `sluice` command, process roles, embedded PostgreSQL."""
