"""The sync engine (#16): warehouse groups into the entity rows."""
