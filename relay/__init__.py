"""Store-and-forward plumbing shared by every tier: the ledger of events and cases, the outbox
and its forwarder, the inbox service, the gRPC server and upstream client, node setup and the
command-line plumbing the three tools share."""
