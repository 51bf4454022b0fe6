"""What the tests share: a served app and remote services, client processes (scripted backends: qmux.testing)."""
