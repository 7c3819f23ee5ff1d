"""Request and response models of the API, where they differ from :mod:`server.models`' bases."""
