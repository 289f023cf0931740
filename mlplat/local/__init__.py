"""The local platform: the cloud's shape on 127.0.0.1, with real processes."""
