"""The control plane web app (arrives with the control-plane issues)."""
