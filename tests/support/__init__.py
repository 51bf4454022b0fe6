"""What the tests share: scripted backends, a served app and remote services, client processes."""
