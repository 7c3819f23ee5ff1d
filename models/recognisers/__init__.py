"""Face recognisers: each turns aligned face chips into embedding vectors."""
