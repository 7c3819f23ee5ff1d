"""The school server: ingest, attendance rules, API, notifications and web pages (imports only
broker and models)."""
